"""A lab server made of a directory: what the incident steps act on, without PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from drills.errors import LabError, TargetError
from drills.journal import JournalEntry
from drills.steps.base import RevertStack, StepContext


@dataclass
class FakeLab:
    root: Path


@dataclass
class FakeServer:
    name: str
    datadir: Path
    lab: FakeLab
    dsn: str = "host=127.0.0.1 port=1 user=postgres dbname=postgres"
    running: bool = True
    refuses: str = ""  # the log line of a start that fails, or "" when it starts
    calls: list[str] = field(default_factory=list)

    def pid(self) -> int:
        if not self.running:
            raise TargetError(f"{self.name}: server is not running")
        return 4242

    def start(self) -> None:
        self.calls.append("start")
        self.running = not self.refuses
        if self.refuses:
            raise LabError(f"{self.name}: server exited (1): {self.refuses}")

    def restart(self) -> None:
        self.calls.append("restart")
        self.running = False
        self.start()

    def kill_all(self) -> None:
        self.calls.append("kill_all")
        self.running = False

    def log_tail(self, lines: int = 3) -> str:
        return " | ".join(["LOG:  database system is shut down", self.refuses][-lines:])


def server(tmp_path: Path, name: str = "a") -> FakeServer:
    datadir = tmp_path / name
    for sub in ("base/5", "global", "pg_wal/archive_status"):
        (datadir / sub).mkdir(parents=True)
    (datadir / "postgresql.conf").write_text("port = 5432\n")
    (datadir / "pg_hba.conf").write_text("local all all trust\n")
    (datadir / "base/5/16384").write_bytes(b"\x01" * 16384)
    (datadir / "global/pg_control").write_bytes(b"\x02" * 8192)
    (datadir / "pg_wal/000000010000000000000001").write_bytes(b"\x03" * 3 * 2**20 + b"\x04")
    return FakeServer(name, datadir, FakeLab(tmp_path))


def context(targets: dict[str, object], journal: list[JournalEntry] | None = None) -> StepContext:
    entries = journal if journal is not None else []
    return StepContext(
        targets=targets,  # type: ignore[arg-type]
        probes={},
        reverts=RevertStack(),
        variables={},
        stable=3,
        progress=lambda message: None,
        journal=entries.append,
    )
