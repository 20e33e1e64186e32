"""The record of a drill that died: written by `drills recover`, with verdict `crashed`.

A drill journals `RecordOnCrash` right after it starts (`drills.journal`): whose run it is,
where its record goes, and what the record must say. If the harness dies, even by SIGKILL,
`drills recover` undoes the journal newest first, so this entry, the oldest after the run's
own, comes last: once the lab is gone, it writes the run's record, chained and signed like any
other, pointing at the history the drill left (cut short where it died). A run that got to
write its own record (its journal kept for a kept lab or a failed revert) is left as it is.

`drills recover` runs as root, so the entry is checked before anything is written (`problem`):
the records directory must be a real directory owned by root or by the user running recover
and writable by its owner only; the history must be the run's own name; a file already at the
record's name must be a regular file (the run's own record).
"""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import field_validator

from drills.checker import Overall
from drills.errors import DrillsError
from drills.files import unsafe_dir
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.records.build import host_facts, utc_iso
from drills.records.model import CheckRecord, ObjectivesRecord, RunRecord, ScenarioRef
from drills.records.signing import SigningKey, signing_key
from drills.records.store import write_record

if TYPE_CHECKING:
    from drills.scenario import LoadedScenario

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@JOURNAL.register("run-record")
class RecordOnCrash(JournalEntry):
    """What the record of a run that dies must say, and where it goes."""

    op: Literal["run-record"] = "run-record"
    subject: ClassVar[str] = "run_id"
    run_id: str
    records_dir: str  # absolute
    history: str  # file name, in records_dir
    scenario: ScenarioRef
    started_at: str
    objectives: ObjectivesRecord
    check: CheckRecord
    key_id: str | None = None  # the run signs its records with this key
    key_file: str | None = None  # ... read from this file (else from $DRILLS_SIGNING_KEY)

    @field_validator("run_id", "history")
    @classmethod
    def _file_name(cls, value: str) -> str:
        if not _RUN_ID.match(value):
            raise ValueError(f"{value!r} is not a plain file name")
        return value

    @field_validator("records_dir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not Path(value).is_absolute():
            raise ValueError(f"{value!r} is not an absolute path")
        return value

    def problem(self) -> str | None:
        directory = Path(self.records_dir)
        why = unsafe_dir(directory, {0, os.geteuid()})
        if why is not None:
            return f"records directory {directory}: {why}"
        if self.history != f"{self.run_id}.history.jsonl":
            return f"history {self.history!r} is not the run's ({self.run_id}.history.jsonl)"
        return _not_a_record(directory / f"{self.run_id}.json")

    def undo(self, recovery: Recovery) -> str | None:
        directory = Path(self.records_dir)
        path = directory / f"{self.run_id}.json"
        if path.exists():
            return None  # the run wrote its own record before it died
        if not directory.is_dir():
            raise DrillsError(f"{directory}: the records directory is gone")
        written = write_record(path, self.record(), key=self._key(directory))
        signed = "signed" if written.signature else "unsigned"
        return f"wrote {path} (verdict crashed, {signed})"

    def _key(self, directory: Path) -> SigningKey | None:
        if self.key_id is None:
            return None
        path = Path(self.key_file) if self.key_file else None
        key = signing_key(directory, key_file=path)
        if key is None or key.key_id != self.key_id:
            raise DrillsError(
                f"the run signed its records with key {self.key_id}: give that key "
                f"($DRILLS_SIGNING_KEY_FILE or $DRILLS_SIGNING_KEY) to write its crashed record"
            )
        return key

    def record(self) -> RunRecord:
        history = Path(self.records_dir) / self.history
        finished = self.started_at
        if history.is_file():  # its last write is the last moment the drill was seen alive
            finished = utc_iso(history.stat().st_mtime_ns)
        recovered = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return RunRecord(
            run_id=self.run_id,
            scenario=self.scenario,
            started_at=self.started_at,
            finished_at=finished,
            verdict=Overall.CRASHED,
            error=(
                "the drill died before writing its record (the harness was killed or "
                f"crashed); `drills recover` wrote this record at {recovered}"
            ),
            objectives=self.objectives,
            check=self.check,
            host=host_facts(),
            history=self.history if history.is_file() else "",
        )


def _not_a_record(path: Path) -> str | None:
    """Why what is at `path` cannot be the run's own record (None: nothing, or a file)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: unusable ({exc.strerror})"
    if stat.S_ISREG(info.st_mode):
        return None
    what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
    return f"{path}: {what} where the run's record would be"


def record_on_crash(
    record_path: Path, loaded: LoadedScenario, started_wall_ns: int, key: SigningKey | None
) -> RecordOnCrash:
    """The entry a run journals when it starts, before it changes anything."""
    from drills.resolved import check_config  # the scenario's modules are not loaded at recovery

    scenario = loaded.scenario
    objectives = scenario.objectives
    key_file = None if key is None or key.source.startswith("$") else Path(key.source)
    return RecordOnCrash(
        run_id=record_path.stem,
        records_dir=str(record_path.parent.resolve()),
        history=f"{record_path.stem}.history.jsonl",
        scenario=ScenarioRef(
            name=scenario.name, file=str(loaded.path), sha256=loaded.sha256, description=""
        ),
        started_at=utc_iso(started_wall_ns),
        objectives=ObjectivesRecord(
            rto_s=objectives.rto, rpo_s=objectives.rpo, availability=objectives.availability
        ),
        check=CheckRecord.of(check_config(scenario)),
        key_id=None if key is None else key.key_id,
        key_file=None if key_file is None else str(key_file.resolve()),
    )
