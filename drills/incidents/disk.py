"""`lose-disk`: a lab server's disk is lost. The server is killed (it would crash the moment
its files went) and its whole data directory, WAL included, removed; what the WAL archive did
not hold yet is gone with it. Not reverted: recovering from the repository is what the drill
measures, and the lab removes its directory anyway."""

from __future__ import annotations

import shutil
import time
from typing import Any, ClassVar, Literal

from drills.abilities import Ability
from drills.incidents.config_files import CONFIG_REVERT
from drills.incidents.corrupt import megabytes, plural
from drills.incidents.server import LOCAL_SERVER
from drills.steps.base import STEPS, StepConfig, StepContext


@STEPS.register("lose-disk")
class LoseDisk(StepConfig):
    kind: Literal["lose-disk"]
    target: str
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = LOCAL_SERVER

    def describe(self) -> str:
        return f"lose the disk of {self.target}"

    def run(self, ctx: StepContext) -> str:
        server = ctx.target_as(self.target, LOCAL_SERVER)
        files = [p for p in server.datadir.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        server.kill_all()
        lost_ns = time.monotonic_ns()
        shutil.rmtree(server.datadir)
        ctx.reverts.drop(CONFIG_REVERT, server.name)  # no configuration left to put back
        ctx.facts["incident"] = {
            "kind": "lose-disk",
            "node": server.name,
            "at_ns": lost_ns,
            "files": len(files),
            "bytes": size,
        }
        return (
            f"{server.name} killed and its data directory removed, WAL included: "
            f"{plural(len(files), 'file')}, {megabytes(size)}"
        )
