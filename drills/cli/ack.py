"""`drills ack`: acknowledge the manual step a drill is waiting at."""

from __future__ import annotations

import argparse
from pathlib import Path

from drills.cli.common import Subparsers, add_command
from drills.errors import EXIT_OK


def add_parsers(sub: Subparsers) -> None:
    ack = add_command(
        sub,
        "ack",
        _ack,
        help="acknowledge the manual step a running drill waits at",
        description=(
            "Acknowledge a drill's manual step from another shell, or from another host that "
            "shares drills' state directory ($DRILLS_STATE_DIR, default ~/.local/state/drills). "
            "Who acknowledged, when and the note go into the drill's history and record. "
            "Without --run, the only drill waiting is acknowledged."
        ),
    )
    ack.add_argument("--run", metavar="ID", help="the run id the drill printed")
    ack.add_argument("--note", default="", help="a note for the record, e.g. 'failover done'")
    ack.add_argument(
        "--as", dest="by", metavar="NAME", help="who acknowledges (default: the login user)"
    )
    ack.add_argument("--state-dir", type=Path, help="drills' state directory (default: as above)")


def _ack(args: argparse.Namespace) -> int:
    from drills.acks import acknowledge
    from drills.journal import state_dir
    from drills.operator import who

    found = acknowledge(args.state_dir or state_dir(), args.run, args.by or who(), args.note)
    role = f" ({found.role})" if found.role else ""
    print(f"acknowledged in {found.run_id}: {found.instruction}{role}")
    return EXIT_OK
