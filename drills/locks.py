"""Locks on targets: two drills must not act on the same targets at once.

A lock is a file in `$DRILLS_STATE_DIR/locks`, created exclusively, naming its holder (pid and
its start time, host, scenario, start). A lock whose holder process is gone is stale and taken
over. Labs are private to their drill and need none; processes you run (by pid file) and
network links do.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from drills.containers.engine import resolved_engine
from drills.errors import DrillsError
from drills.files import private_dir, write_new
from drills.journal import state_dir
from drills.proctree import alive, start_time


class Locked(DrillsError):
    """Another drill holds a lock on one of the targets."""


def _holder_alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell for another host: assume it is running
    pid = int(holder.get("pid", 0))
    return alive(pid) and start_time(pid) == holder.get("start")


class Locks:
    def __init__(self, keys: list[str], scenario: str, directory: Path | None = None) -> None:
        self.dir = (directory or state_dir()) / "locks"
        self.keys = sorted(set(keys))
        self.scenario = scenario
        self.held: list[Path] = []

    def _path(self, key: str) -> Path:
        return self.dir / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".lock")

    def acquire(self) -> None:
        if not self.keys:
            return
        private_dir(self.dir.parent)
        private_dir(self.dir)
        me = {
            "pid": os.getpid(),
            "start": start_time(os.getpid()),
            "host": socket.gethostname(),
            "scenario": self.scenario,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            for key in self.keys:
                self._take(key, me | {"key": key})
        except BaseException:
            self.release()
            raise

    def _take(self, key: str, me: dict[str, Any]) -> None:
        path = self._path(key)
        # Written whole to a private file, then linked into place: a reader never sees a
        # lock file without its holder.
        mine = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        mine.unlink(missing_ok=True)  # left by a dead process that had our pid
        write_new(mine, json.dumps(me))
        try:
            for _ in range(3):
                try:
                    os.link(mine, path)
                except FileExistsError:
                    try:
                        holder = json.loads(path.read_text())
                    except FileNotFoundError:
                        continue  # released meanwhile: try again
                    except (OSError, json.JSONDecodeError):
                        holder = {}
                    if holder and _holder_alive(holder):
                        raise Locked(
                            f"{key} is in use by another drill: scenario "
                            f"{holder.get('scenario')!r}, pid {holder.get('pid')} on "
                            f"{holder.get('host')}, since {holder.get('since')} (UTC)"
                        ) from None
                    # Stale: move it aside under a name of our own, so that of two drills
                    # taking it over only one removes it.
                    aside = path.with_name(f"{path.name}.{os.getpid()}.stale")
                    try:
                        os.rename(path, aside)
                        aside.unlink()
                    except FileNotFoundError:
                        pass
                    continue
                self.held.append(path)
                return
        finally:
            mine.unlink(missing_ok=True)
        raise Locked(f"{key}: could not take the lock")

    def release(self) -> None:
        for path in self.held:
            path.unlink(missing_ok=True)
        self.held = []


def target_keys(scenario: Any, containers: Iterable[Any] = ()) -> list[str]:
    """What a scenario's drill acts on outside its own lab. A container (ContainerTarget) is
    locked by its id on its engine, however the scenario selects it."""
    keys = [
        f"container:{resolved_engine(t.engine).get('host') or t.engine.context}:{t.id}"
        for t in containers
    ]
    for spec in scenario.targets.values():
        if spec.host is not None:  # the host's own: its name as the scenario gives it
            what = f"unit:{spec.unit}" if spec.unit else f"process:{spec.pid_file}"
            keys.append(f"host:{spec.host.hostname}:{spec.host.port}:{what}")
        elif spec.pid_file is not None:
            keys.append(f"process:{os.path.realpath(spec.pid_file)}")
    if scenario.network is not None:
        for name, link in scenario.network.links.items():
            if scenario.network.toxiproxy:
                keys.append(f"toxiproxy:{scenario.network.toxiproxy}:{name}")
            if link.upstream:
                keys.append(f"upstream:{link.upstream}")
    for step in scenario.steps:  # what `exec` steps say they touch
        keys += [f"name:{name}" for name in getattr(step, "locks", [])]
    return keys
