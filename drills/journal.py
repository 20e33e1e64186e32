"""The crash journal: what a drill changed, written down (and fsynced) before it changes it.

If the harness dies, even by SIGKILL, `drills recover` reads the journals of dead runs and
undoes what they record: resumes stopped processes, kills and removes labs, heals links;
unpauses, starts and reconnects containers, removes iptables rules, helpers and docker labs.
Journals live in `$DRILLS_STATE_DIR` (default `~/.local/state/drills`), one file per run; a
run that ends normally removes its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from drills.errors import DrillsError
from drills.proctree import alive, descendants, signal_pids, start_time

ENV = "DRILLS_STATE_DIR"
# Undone through the container engine (drills/containers/recovery.py).
CONTAINER_OPS = frozenset(
    {"container-pause", "container-stop", "disconnect", "iptables", "docker-lab"}
)


def state_dir() -> Path:
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "drills"


class Journal:
    def __init__(self, run_id: str, scenario: str, directory: Path | None = None) -> None:
        self.dir = (directory or state_dir()) / "journal"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{run_id}.jsonl"
        self._file = self.path.open("a", encoding="utf-8")
        self.append(
            {
                "op": "run",
                "run_id": run_id,
                "scenario": scenario,
                "pid": os.getpid(),
                "start": start_time(os.getpid()),
                "host": socket.gethostname(),
                "at": time.time(),
            }
        )

    def append(self, entry: dict[str, Any]) -> None:
        """Durably record `entry` before the change it describes is made."""
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """The run cleaned up after itself: nothing to recover."""
        self._file.close()
        self.path.unlink(missing_ok=True)


def _entries(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by the crash
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _owner_alive(entries: list[dict[str, Any]]) -> bool:
    run = next((e for e in entries if e.get("op") == "run"), None)
    if run is None:
        return False
    if run.get("host") != socket.gethostname():
        return True  # another host's run (a shared state dir): not ours to judge or undo
    pid = int(run.get("pid", 0))
    return alive(pid) and start_time(pid) == run.get("start")


def orphaned(directory: Path | None = None) -> Iterator[Path]:
    """Journals of runs whose harness is gone."""
    folder = (directory or state_dir()) / "journal"
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.jsonl")):
        if not _owner_alive(_entries(path)):
            yield path


def refuse_if_orphaned(directory: Path | None = None) -> None:
    found = list(orphaned(directory))
    if found:
        names = ", ".join(p.stem for p in found)
        raise DrillsError(
            f"an earlier drill died without cleaning up ({names}): "
            "run `drills recover` first, which reverts what it left"
        )


def _same_process(pid: int, started: object) -> bool:
    return alive(pid) and (started is None or start_time(pid) == started)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _processes_in(root: str, bin_dir: str | None) -> list[int]:
    """Lab servers: processes whose working directory is inside `root` (PostgreSQL chdirs to
    its data) and, when the journal names it, whose program is in the lab's `bin_dir`, so that
    a shell an operator opened in a kept lab is left alone."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
                exe = os.readlink(entry / "exe") if bin_dir else ""
            except OSError:
                continue
            if _inside(cwd, root) and (not bin_dir or _inside(exe, bin_dir)):
                found.append(int(entry.name))
    return found


def recover(path: Path) -> list[str]:
    """Undo what the journal at `path` records, newest first; return what was done."""
    done: list[str] = []
    killed: list[int] = []
    failed = False
    entries = _entries(path)
    engines = None
    for entry in reversed(entries):
        op = entry.get("op")
        if op in CONTAINER_OPS:
            from drills.containers.recovery import Engines, undo

            engines = engines or Engines()
            try:
                outcome = undo(entry, engines)
            except Exception as exc:  # an engine that cannot be reached: keep the journal
                failed = True
                text = " ".join(str(exc).split())[:200]
                done.append(
                    f"could not undo {op} of {entry.get('target', entry.get('id'))}: {text}"
                )
                continue
            if outcome:
                done.append(outcome)
        elif op == "pause":
            root, started = int(entry["pid"]), entry.get("start")
            if _same_process(root, started):
                pids = [root, *descendants(root)]
                signal_pids(list(reversed(pids)), signal.SIGCONT)
                done.append(f"resumed {entry.get('target', root)} ({len(pids)} processes)")
        elif op == "process":
            pid, started = int(entry["pid"]), entry.get("start")
            if _same_process(pid, started):
                pids = [pid, *descendants(pid)]
                signal_pids(pids, signal.SIGCONT)
                signal_pids(pids, signal.SIGKILL)
                killed += pids
                done.append(f"killed lab server {pid} ({len(pids)} processes)")
        elif op == "lab-dir":
            folder = str(entry["path"])
            bin_dir = entry.get("bin")
            leftovers = _processes_in(folder, os.path.realpath(bin_dir) if bin_dir else None)
            signal_pids(leftovers, signal.SIGCONT)
            signal_pids(leftovers, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while any(alive(p) for p in leftovers) and time.monotonic() < deadline:
                time.sleep(0.02)
            if Path(folder).exists():
                shutil.rmtree(folder, ignore_errors=True)
                done.append(f"removed lab {folder}")
        elif op == "toxiproxy-link":
            from drills.network.proxy import ProxyError
            from drills.network.toxiproxy import ToxiproxyClient

            client = ToxiproxyClient(str(entry["url"]))
            try:
                if entry.get("created"):
                    client.delete(str(entry["link"]))
                    done.append(f"deleted toxiproxy link {entry['link']}")
                else:
                    client.heal(str(entry["link"]))
                    done.append(f"healed toxiproxy link {entry['link']}")
            except ProxyError as exc:
                failed = True
                done.append(f"could not restore toxiproxy link {entry['link']}: {exc}")
    deadline = time.monotonic() + 10
    while any(alive(p) for p in killed) and time.monotonic() < deadline:
        time.sleep(0.02)
    if failed:
        done.append(f"journal kept ({path}): run `drills recover` again once that is fixed")
    else:
        path.unlink(missing_ok=True)
    return done
