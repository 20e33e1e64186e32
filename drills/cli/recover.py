"""`drills recover`: undo what drills that died left behind (the crash journals)."""

from __future__ import annotations

from drills.cli.common import Subparsers, add_command
from drills.errors import EXIT_ERROR, EXIT_OK


def add_parsers(sub: Subparsers) -> None:
    add_command(
        sub,
        "recover",
        lambda args: _recover(),
        help="undo what drills that died (even by SIGKILL) left behind",
        description=(
            "Read the crash journals of runs whose harness is gone ($DRILLS_STATE_DIR, default "
            "~/.local/state/drills) and undo what they record: resume stopped processes (on this "
            "host, or over SSH on a host target's host; a systemd unit's, if the same "
            "invocation still runs), start what a `stop` step stopped (a unit with systemctl), "
            "remove iptables rules (in containers and on hosts), unpause, start and reconnect "
            "containers (each on its own engine), kill and remove labs (from every engine they "
            "use), heal Toxiproxy links, "
            "run the `undo` of exec steps (their secrets "
            "taken again from this shell's environment or files); then write the run's record, "
            "verdict crashed, chained and signed (docs/records.md). A new drill refuses to start "
            "until then. An entry that fails validation (a process without its recorded identity,"
            " a lab directory drills did not make, a records directory others can write) is "
            "reported, not acted on. A state directory that is a symbolic link, another user's, "
            "or writable by its group or others is refused whole (exit 2). Exit status 2 when "
            "something could not be undone (its journal is kept)."
        ),
    )


def _recover() -> int:
    from drills.journal import check_state_dir, orphaned, recover

    check_state_dir()  # PathError: exit 2, one line, nothing acted on
    found = list(orphaned())
    if not found:
        print("nothing to recover")
        return EXIT_OK
    kept = False
    for path in found:
        print(f"{path.stem}:")
        for action in recover(path) or ["nothing left to undo"]:
            print(f"  {action}")
        kept = kept or path.exists()
    return EXIT_ERROR if kept else EXIT_OK
