"""`restore`: bring a lab node back from the lab's pgBackRest repository, to the latest WAL, to
just before a recorded incident, to a time, or to the end of a named backup; promoted (or as a
standby of another node). The step records every boundary the restore RTO is divided at."""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import psycopg
from pydantic import Field, model_validator

from drills.abilities import Ability
from drills.backup.amcheck import amcheck
from drills.backup.lab import BACKED, Backed, transfer_lines
from drills.backup.pgbackrest import BackupSet, Repository, archive_current_wal
from drills.backup.serverlog import log_size, read_redo
from drills.backup.sizes import Size
from drills.durations import Duration
from drills.errors import StepError
from drills.history import StepEvent
from drills.labs.base import LabConfig
from drills.steps.base import STEPS, StepConfig, StepContext


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
        return self

    @property
    def target_names(self) -> list[str]:
        return [self.target] + ([self.standby_of] if self.standby_of else [])

    @property
    def step_refs(self) -> list[str]:
        return [name for name in (self.before,) if name]

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
                facts["archived"] = _archive_now(node)
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
        chosen = self._chosen_set(ctx, sets)
        options = [f"--set={chosen.label}"] if self.backup else []
        facts["backup"] = chosen.label
        facts["db_bytes"] = chosen.db_bytes
        facts["backup_end_ns"] = repository.stops.get(
            chosen.label, wall_to_mono(chosen.stop_wall_s * 1_000_000_000)
        )
        if self.project_size is not None:
            facts["project_size_bytes"] = self.project_size
        promote = [] if self.standby_of else ["--target-action=promote"]
        if self.before is not None:
            incident = ctx.named(self.before)
            before = self._before(incident, sets, facts)
            return options + before + promote, facts["target"]
        if self.time is not None:
            wall = _parse_time(self.time)
            _not_older(wall, sets, self.time)
            target = {"type": "time", "value": timestamp(wall), "exclusive": True}
            options += ["--type=time", f"--target={target['value']}", "--target-exclusive"]
            return options + promote, target
        if self.to == "immediate":
            return [*options, "--type=immediate", *promote], {"type": "immediate", "value": ""}
        return options, {"type": "latest", "value": ""}

    def _chosen_set(self, ctx: StepContext, sets: list[BackupSet]) -> BackupSet:
        if self.backup is None:
            return sets[-1]
        label = self.backup
        if label in ctx.done:
            label = str(ctx.done[label].facts.get("backup", {}).get("label", label))
        for found in sets:
            if found.label == label:
                return found
        labels = ", ".join(s.label for s in sets)
        raise StepError(f"no backup {label!r} in the repository (backups: {labels})")

    def _before(
        self, incident: StepEvent, sets: list[BackupSet], facts: dict[str, Any]
    ) -> list[str]:
        what = incident.facts.get("incident", {})
        at_ns = int(what.get("at_ns", incident.start_ns))
        facts["before_step"] = self.before
        facts["incident_ns"] = at_ns
        facts["incident_start_ns"] = int(what.get("start_ns", at_ns))
        wall = time.time_ns() - (time.monotonic_ns() - at_ns)
        _not_older(wall, sets, f"step {self.before!r}")
        if "xid" in what:
            facts["target"] = {"type": "xid", "value": str(what["xid"]), "exclusive": True}
            return ["--type=xid", f"--target={what['xid']}", "--target-exclusive"]
        moment = timestamp(int(what.get("commit_wall_ns", wall)))
        facts["target"] = {"type": "time", "value": moment, "exclusive": True}
        return ["--type=time", f"--target={moment}", "--target-exclusive"]

    def _directory(self, ctx: StepContext, node: Backed) -> list[str]:
        datadir = node.server().datadir
        if self.directory == "new" and datadir.exists():
            datadir.rename(datadir.with_name(f"{datadir.name}.damaged-{ctx.serial()}"))
        if datadir.exists() and any(datadir.iterdir()):
            return ["--delta"]
        parent = datadir.parent
        datadir.mkdir(mode=0o700, exist_ok=True)
        info = parent.stat()
        os.chown(datadir, info.st_uid, info.st_gid)  # the lab directory's owner runs the servers
        return []

    def _bring_up(self, node: Backed, facts: dict[str, Any]) -> None:
        offset = log_size(node.server_log())
        facts["server_start_ns"] = time.monotonic_ns()
        try:
            node.start_server()
        except Exception as exc:
            raise StepError(f"the restored server did not start: {exc}") from exc
        if self.standby_of:
            facts["streaming_ns"] = _wait_streaming(node.local_dsn(), self.timeout)
        else:
            facts["promoted_ns"] = _wait_promoted(node.local_dsn(), self.timeout)
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
            after = _read_value(node.local_dsn(), query)
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
                    _amcheck_from(primary.local_dsn(), node.local_dsn())
            server = node.server()
            facts["verify"] = {
                "pgbackrest": repository.verify(),
                "amcheck": amcheck(
                    node.program_dir(), "127.0.0.1", server.port, install=not self.standby_of
                ),
            }

    def _check_of(self, ctx: StepContext) -> tuple[str, str] | None:
        incident = ctx.named(self.before).facts.get("incident", {}) if self.before else {}
        recorded = incident.get("check") or {}
        query = self.check or recorded.get("query")
        if query is None:
            return None
        return str(query), str(recorded.get("before", ""))


def _parse_time(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time (e.g. 2026-12-02T16:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: add Z or +HH:MM")
    return int(moment.timestamp() * 1e6) * 1000


def _not_older(wall_ns: int, sets: list[BackupSet], what: str) -> None:
    oldest = min(sets, key=lambda s: s.stop_wall_s)
    if wall_ns < oldest.stop_wall_s * 1_000_000_000:
        raise StepError(
            f"restore target ({what}) is older than every backup: the oldest, {oldest.label}, "
            f"ended {timestamp(oldest.stop_wall_s * 1_000_000_000)}"
        )


def _archive_now(node: Backed) -> str:
    """Push the WAL the server has not archived yet, if it still runs; say what happened."""
    try:
        return f"archived up to {archive_current_wal(node.local_dsn())}"
    except (psycopg.Error, StepError) as exc:
        return f"server not reachable, WAL not yet archived is lost: {str(exc).strip()[:120]}"


def _wait_promoted(dsn: str, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and row[0] is False:
                return time.monotonic_ns()
        except psycopg.Error:
            pass
        time.sleep(0.01)
    raise StepError(f"the restored server was not promoted within {timeout_s:g}s")


def _wait_streaming(dsn: str, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
            if row is not None and row[0] == "streaming":
                return time.monotonic_ns()
        except psycopg.Error:
            pass
        time.sleep(0.02)
    raise StepError(f"the restored standby was not streaming within {timeout_s:g}s")


def _amcheck_from(primary_dsn: str, standby_dsn: str, timeout_s: float = 10.0) -> None:
    """Install amcheck on the primary and wait until the standby has replayed it."""
    with contextlib.suppress(psycopg.Error):
        with psycopg.connect(primary_dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(standby_dsn, autocommit=True, connect_timeout=5) as conn:
            while time.monotonic() < deadline:
                query = "SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'"
                row = conn.execute(query).fetchone()
                if row is not None and row[0]:
                    return
                time.sleep(0.05)


def _read_value(dsn: str, query: str) -> str:
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        return f"error: {str(exc).strip().splitlines()[0]}"
    return "" if row is None else str(row[0])


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
