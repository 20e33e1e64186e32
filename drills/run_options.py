"""What a drill is run with (`RunOptions`, from the command line) and what it gives back
(`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from drills.participants import Participant
from drills.records import RunRecord
from drills.store.settings import Store


@dataclass
class RunOptions:
    reports_dir: Path = Path("reports/runs")
    keep_lab: bool = False
    max_downtime: float | None = None  # global guard: abort past this much service downtime
    state_dir: Path | None = None  # crash journals; default $DRILLS_STATE_DIR or ~/.local/state
    live: bool | None = None  # None: when stderr is a terminal
    config: Path | None = None  # drills.yaml; None: looked up (drills.config.config_path)
    auto_ack: float | None = None  # acknowledge manual steps after this long
    participants: list[Participant] = field(default_factory=list)  # --participant NAME:ROLE
    store: Store | None = None  # the results store: leases on targets, said in the record


@dataclass
class RunResult:
    record: RunRecord
    record_path: Path
    history_path: Path
    interrupted: str | None = None
    notes: list[str] = field(default_factory=list)
    aborted: str | None = None
    record_error: str | None = None  # why the record could not be written
