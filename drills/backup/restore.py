"""`restore`: bring a lab node back from the lab's pgBackRest repository, to the latest WAL, to
just before a recorded incident, to a time, or to the end of a named backup; promoted (or as a
standby of another node). The step records every boundary the restore RTO is divided at."""

from __future__ import annotations

import re
import shutil
import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from drills.abilities import Ability
from drills.backup.amcheck import amcheck
from drills.backup.lab import BACKED, Backed, transfer_lines
from drills.backup.pgbackrest import BackupSet, Repository
from drills.backup.restored import (
    amcheck_from,
    archive_now,
    read_value,
    wait_promoted,
    wait_streaming,
)
from drills.backup.serverlog import log_size, read_redo
from drills.backup.sizes import Size
from drills.durations import Duration
from drills.errors import StepError
from drills.files import chown_nofollow
from drills.labs.base import LabConfig
from drills.labs.credentials import passfile_of
from drills.steps.base import STEPS, StepConfig, StepContext

STEP_NAME = r"^[a-z0-9][a-z0-9_.-]*$"  # as StepConfig.name; pgBackRest labels have capitals


def lab_backup_problems(lab: LabConfig | None, kind: str) -> list[tuple[tuple[str, ...], str]]:
    """A step that needs the lab's repository, in a scenario whose lab has none."""
    if lab is None or getattr(lab, "backup", None) is None:
        return [((), f"{kind} needs a lab with a `backup:` setting (lab.backup)")]
    return []


def wall_to_mono(wall_ns: int) -> int:
    return time.monotonic_ns() - (time.time_ns() - wall_ns)


def timestamp(wall_ns: int) -> str:
    """A recovery target time pgBackRest and PostgreSQL read, to the microsecond, in UTC."""
    moment = datetime.fromtimestamp(wall_ns / 1e9, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00")


@STEPS.register("restore")
class Restore(StepConfig):
    kind: Literal["restore"]
    target: str = Field(description="the lab node to restore")
    before: str | None = Field(
        None, description="a named incident step: recover to just before it (its xid, else time)"
    )
    time: str | None = Field(None, description="recover to just before this time (ISO 8601)")
    to: Literal["latest", "immediate"] = Field(
        "latest",
        description="without before/time: replay every archived WAL (latest) or stop where the "
        "backup became consistent (immediate: no WAL after the backup)",
    )
    backup: str | None = Field(
        None, description="a named backup step, or a pgBackRest label; default: pgBackRest chooses"
    )
    directory: Literal["in-place", "new"] = Field(
        "in-place",
        description="in-place: pgBackRest --delta over the node's data directory; new: an empty "
        "directory, the damaged one kept beside it for forensics",
    )
    standby_of: str | None = Field(
        None, description="restore as a streaming standby of this node instead of promoting"
    )
    verify: bool = Field(True, description="pgbackrest verify and pg_amcheck after the restore")
    check: str | None = Field(
        None,
        description="a query whose value must equal the incident's before (default: its check)",
    )
    project_size: Size | None = Field(
        None, description="project the restore copy time to this size (labelled a projection)"
    )
    timeout: Duration = Field(600.0, description="for the restored server to be promoted")
    shorthand: ClassVar[str | None] = "target"
    disruptive: ClassVar[bool] = False
    needs: ClassVar[Ability[Any] | None] = BACKED

    @model_validator(mode="after")
    def _one_target(self) -> Restore:
        if self.before is not None and self.time is not None:
            raise ValueError("give `before` or `time`, not both")
        if self.to == "immediate" and (self.before or self.time):
            raise ValueError("`to: immediate` stops at the backup's end: drop `before`/`time`")
        if self.time is not None:
            _parse_time(self.time)
        if self.standby_of is not None:
            if self.standby_of == self.target:
                raise ValueError("a node cannot be restored as a standby of itself")
            if self.before or self.time or self.to == "immediate":
                raise ValueError(
                    "a standby follows its primary to the latest WAL: drop `before`, `time` "
                    "and `to: immediate`, or drop `standby_of`"
                )
        if self.check is not None and self.before is None:
            raise ValueError("`check` compares with the value the `before:` step read: add it")
        return self

    @property
    def target_names(self) -> list[str]:
        return [self.target] + ([self.standby_of] if self.standby_of else [])

    @property
    def step_refs(self) -> list[str]:
        """`before`, and `backup` when it names a step (pgBackRest labels have capitals)."""
        refs = [self.before] if self.before else []
        if self.backup is not None and re.match(STEP_NAME, self.backup):
            refs.append(self.backup)
        return refs

    def lab_problems(self, lab: LabConfig | None) -> list[tuple[tuple[str, ...], str]]:
        return lab_backup_problems(lab, "restore")

    def describe(self) -> str:
        point = f"before {self.before}" if self.before else self.time or self.to
        source = f"backup {self.backup}, " if self.backup else ""
        role = f", as a standby of {self.standby_of}" if self.standby_of else ""
        return f"restore {self.target} ({source}{point}{role})"

    def run(self, ctx: StepContext) -> str:
        node = ctx.target_as(self.target, BACKED)
        repository = node.backups()
        started = time.monotonic_ns()
        mode = "new-directory" if self.directory == "new" else "in-place"
        facts: dict[str, Any] = {
            "node": self.target,
            "server": node.server().datadir.name,
            "start_ns": started,
            "mode": "standby" if self.standby_of else mode,
        }
        ctx.facts["restore"] = facts
        options, target = self._recovery(ctx, repository, facts)
        if self.standby_of or self.directory == "new":
            # A compromised or damaged server is stopped dead: a clean shutdown would archive
            # WAL written after the incident (or after the other site's promotion), and a
            # restore that replays it can no longer follow the new primary's timeline.
            node.kill_server()
        else:
            if self.to != "immediate":
                facts["archived"] = archive_now(node)
            node.stop_server()
        options += self._directory(ctx, node)
        if self.standby_of:
            primary = ctx.target(self.standby_of)
            conninfo = node.standby_conninfo(primary)
            options += ["--type=standby", f"--recovery-option=primary_conninfo={conninfo}"]
        ran = repository.restore(node.server(), options, transfer_lines("restore", ctx.progress))
        facts |= {
            "target": target,
            "copy_start_ns": ran.start_ns,
            "copy_end_ns": ran.end_ns,
            "pgbackrest_s": ran.own_s,
        }
        self._bring_up(node, facts)
        self._verify(ctx, node, repository, facts)
        return _summary(facts)

    def _recovery(
        self, ctx: StepContext, repository: Repository, facts: dict[str, Any]
    ) -> tuple[list[str], dict[str, Any]]:
        sets = repository.sets()
        if not sets:
            raise StepError(f"no backup in the repository {repository.path / 'repo'}")
        target, options, wall = self._target(ctx, facts)
        chosen = self._chosen_set(ctx, repository, sets, wall)
        facts["backup"] = chosen.label
        facts["db_bytes"] = chosen.db_bytes
        facts["backup_end_ns"] = wall_to_mono(_stop_wall_ns(repository, chosen))
        if self.project_size is not None:
            facts["project_size_bytes"] = self.project_size
        promote = [] if self.standby_of or not options else ["--target-action=promote"]
        return [f"--set={chosen.label}", *options, *promote], target

    def _target(
        self, ctx: StepContext, facts: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str], int | None]:
        """The recovery target, pgBackRest's options for it, and its wall time if it has one."""
        if self.before is not None:
            incident = ctx.named(self.before)
            what = incident.facts.get("incident", {})
            at_ns = int(what.get("at_ns", incident.start_ns))
            facts["before_step"] = self.before
            facts["incident_ns"] = at_ns
            facts["incident_start_ns"] = int(what.get("start_ns", at_ns))
            wall = time.time_ns() - (time.monotonic_ns() - at_ns)
            if "xid" in what:
                value = str(what["xid"])
                options = ["--type=xid", f"--target={value}", "--target-exclusive"]
                return {"type": "xid", "value": value, "exclusive": True}, options, wall
            moment = timestamp(int(what.get("commit_wall_ns", wall)))
            options = ["--type=time", f"--target={moment}", "--target-exclusive"]
            return {"type": "time", "value": moment, "exclusive": True}, options, wall
        if self.time is not None:
            wall = _parse_time(self.time)
            moment = timestamp(wall)
            options = ["--type=time", f"--target={moment}", "--target-exclusive"]
            return {"type": "time", "value": moment, "exclusive": True}, options, wall
        if self.to == "immediate":
            return {"type": "immediate", "value": ""}, ["--type=immediate"], None
        return {"type": "latest", "value": ""}, [], None

    def _chosen_set(
        self, ctx: StepContext, repository: Repository, sets: list[BackupSet], wall: int | None
    ) -> BackupSet:
        """The backup named, or the newest that ended before the target (pgBackRest's own
        choice for a time target, made here so that an xid target gets it too)."""
        ends = [(_stop_wall_ns(repository, found), found) for found in sets]
        if self.backup is not None:
            label = self.backup
            if label in ctx.done:
                label = str(ctx.done[label].facts.get("backup", {}).get("label", label))
            named = [(end, found) for end, found in ends if found.label == label]
            if not named:
                labels = ", ".join(found.label for found in sets)
                raise StepError(f"no backup {label!r} in the repository (backups: {labels})")
            ends = named
        usable = [(end, found) for end, found in ends if wall is None or end <= wall]
        if not usable:
            end, oldest = min(ends, key=lambda pair: pair[0])
            which = "the backup named" if self.backup else "every backup"
            raise StepError(
                f"restore target {self._point()} is older than {which}: {oldest.label} "
                f"ended {timestamp(end)}"
            )
        return max(usable, key=lambda pair: pair[0])[1]

    def _point(self) -> str:
        return f"(step {self.before!r})" if self.before else f"({self.time})"

    def _directory(self, ctx: StepContext, node: Backed) -> list[str]:
        datadir = node.server().datadir
        if self.directory == "new" and datadir.exists():
            datadir.rename(datadir.with_name(f"{datadir.name}.damaged-{ctx.serial()}"))
        elif datadir.exists():  # in place: the same directory, emptied, so every byte is copied
            for entry in datadir.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        parent = datadir.parent
        datadir.mkdir(mode=0o700, exist_ok=True)
        info = parent.stat()
        # The lab directory's owner runs the servers.
        chown_nofollow(datadir, info.st_uid, info.st_gid)
        return []

    def _bring_up(self, node: Backed, facts: dict[str, Any]) -> None:
        offset = log_size(node.server_log())
        node.own_configuration()  # the backup holds the configuration of the server backed up
        facts["server_start_ns"] = time.monotonic_ns()
        try:
            node.start_server()
        except Exception as exc:
            raise StepError(f"the restored server did not start: {exc}") from exc
        if self.standby_of:
            facts["streaming_ns"] = wait_streaming(node, self.timeout)
        else:
            facts["promoted_ns"] = wait_promoted(node, self.timeout)
        redo = read_redo(node.server_log(), offset)
        for key, wall in (
            ("redo_start_ns", redo.started_wall_ns),
            ("redo_done_ns", redo.done_wall_ns),
        ):
            if wall is not None:
                facts[key] = wall_to_mono(wall)
        if redo.target_reached:
            facts["stopped"] = redo.target_reached

    def _verify(
        self, ctx: StepContext, node: Backed, repository: Repository, facts: dict[str, Any]
    ) -> None:
        check = self._check_of(ctx)
        if check is not None:
            query, before = check
            after = read_value(node.local_dsn(), query)
            facts["check"] = {
                "query": query,
                "before": before,
                "after": after,
                "undone": after == before,
            }
        if self.verify:
            ctx.progress("  verifying: pgbackrest verify, pg_amcheck")
            if self.standby_of:  # a standby cannot install amcheck: its primary does
                primary = BACKED.of(ctx.target(self.standby_of))
                if primary is not None:
                    amcheck_from(primary.local_dsn(), node.local_dsn())
            server = node.server()
            facts["verify"] = {
                "pgbackrest": repository.verify(),
                "amcheck": amcheck(
                    node.program_dir(),
                    "127.0.0.1",
                    server.port,
                    install=not self.standby_of,
                    passfile=passfile_of(node.local_dsn()),
                ),
            }

    def _check_of(self, ctx: StepContext) -> tuple[str, str] | None:
        """The incident's check and the value it read before; None when it read none."""
        incident = ctx.named(self.before).facts.get("incident", {}) if self.before else {}
        recorded = incident.get("check") or {}
        query = self.check or recorded.get("query")
        if query is None or "before" not in recorded:
            return None
        return str(query), str(recorded["before"])


def _parse_time(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time (e.g. 2026-12-02T16:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: add Z or +HH:MM")
    return int(moment.timestamp() * 1e6) * 1000


def _stop_wall_ns(repository: Repository, found: BackupSet) -> int:
    """When a backup stopped: to the millisecond when this lab took it (pgBackRest's stamp),
    else pgBackRest's own stop time, to the second."""
    stop = repository.stops.get(found.label)
    if stop is None:
        return found.stop_wall_s * 1_000_000_000
    return time.time_ns() - (time.monotonic_ns() - stop)


def _summary(facts: dict[str, Any]) -> str:
    copy_s = (facts["copy_end_ns"] - facts["copy_start_ns"]) / 1e9
    parts = [
        f"backup {facts['backup']}",
        f"{facts['db_bytes'] / 1e6:,.0f} MB copied in {copy_s:.2f}s",
    ]
    if "redo_start_ns" in facts and "redo_done_ns" in facts:
        parts.append(
            f"WAL replayed in {(facts['redo_done_ns'] - facts['redo_start_ns']) / 1e9:.2f}s"
        )
    if "check" in facts:
        parts.append("incident undone" if facts["check"]["undone"] else "incident NOT undone")
    return ", ".join(parts)
