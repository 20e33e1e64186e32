"""Patroni settings against measured RTO: scenarios/patroni-failover.yaml (the leader's node
lost, Patroni decides) run three times with each of Patroni's timing settings, the RTO and its
parts read from each run's record. The figure an operator needs to choose `ttl` and
`loop_wait` for an RTO objective.

Writes its section of docs/benchmarks.md. Run with `make bench` (or `python -m bench.patroni`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

from bench.sections import replace_section

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "patroni-failover.yaml"
# Patroni's defaults, then the fast setting the shipped scenario uses.
SETTINGS = (
    {"ttl": 30, "loop_wait": 10, "retry_timeout": 10},
    {"ttl": 10, "loop_wait": 2, "retry_timeout": 4},
)


@dataclass
class Run:
    settings: dict[str, int]
    wall_s: float
    record: dict[str, Any]

    @property
    def rto_s(self) -> float | None:
        value = self.record["measurements"]["rto_s"]
        return None if value is None else float(value)

    def part(self, name: str) -> float | None:
        failover = self.record.get("failover") or {}
        value = (failover.get("parts") or {}).get(name)
        return None if value is None else float(value)

    def elected_s(self) -> float | None:
        value = (self.record.get("failover") or {}).get("leader_elected_after_s")
        return None if value is None else float(value)


def _scenario(settings: dict[str, int], folder: Path) -> Path:
    data = yaml.safe_load(SCENARIO.read_text())
    data["lab"].update(settings)
    path = folder / f"patroni-failover-ttl{settings['ttl']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_once(settings: dict[str, int], folder: Path) -> Run:
    reports = folder / "runs"
    before = set(reports.glob("*.json")) if reports.is_dir() else set()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "drills", "run", str(_scenario(settings, folder)),
         "--reports-dir", str(reports)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    wall = time.monotonic() - started
    new = sorted(set(reports.glob("*.json")) - before)
    if len(new) != 1:
        raise SystemExit(f"drills run wrote no record (exit {result.returncode}): {result.stderr}")
    record = json.loads(new[0].read_text())
    if result.returncode != 0:
        print(f"  exit {result.returncode}: {record.get('error')}", file=sys.stderr)
    return Run(settings, wall, record)


def _s(values: list[float | None]) -> str:
    found = [v for v in values if v is not None]
    return f"{statistics.median(found):.2f}s" if found else "n/a"


def _row(runs: list[Run]) -> list[str]:
    s = runs[0].settings
    phases = [r.record["phases_s"] for r in runs]
    return [
        f"ttl {s['ttl']}, loop_wait {s['loop_wait']}, retry_timeout {s['retry_timeout']}",
        ", ".join("n/a" if r.rto_s is None else f"{r.rto_s:.2f}s" for r in runs),
        _s([r.rto_s for r in runs]),
        _s([r.part("detection_s") for r in runs]),
        _s([r.part("election_s") for r in runs]),
        _s([r.part("reconnect_s") for r in runs]),
        ", ".join(str(r.record["measurements"]["lost_writes"]) for r in runs),
        _s([p.get("setup") for p in phases]),
        _s([p.get("teardown") for p in phases]),
        _s([r.wall_s for r in runs]),
    ]


HEADERS = [
    "Patroni settings", "RTO of each run", "RTO (median)", "detection", "election",
    "reconnect", "lost writes", "lab up", "lab down", "drills run wall time",
]  # fmt: skip


def targets(fast: list[Run]) -> str:
    """The speed targets, judged on the runs with the fast setting (the shipped one)."""
    up = statistics.median(r.record["phases_s"]["setup"] for r in fast)
    down = statistics.median(r.record["phases_s"]["teardown"] for r in fast)
    wall = statistics.median(r.wall_s for r in fast)
    rows = [
        ["lab up (median)", f"{up:.2f}s", "<= 8s", "met" if up <= 8 else "missed"],
        ["lab removed (median)", f"{down:.2f}s", "<= 2s", "met" if down <= 2 else "missed"],
        ["whole drill (median)", f"{wall:.2f}s", "<= 40s", "met" if wall <= 40 else "missed"],
    ]
    return tabulate(rows, headers=["ttl 10, loop_wait 2", "measured", "target", "verdict"],
                    tablefmt="github")  # fmt: skip


def section(rows: list[list[str]], repeat: int, fast: list[Run]) -> str:
    table = tabulate(rows, headers=HEADERS, tablefmt="github")
    return "\n".join(
        [
            "## Patroni settings against RTO",
            "",
            "`python -m bench.patroni` (part of `make bench`): scenarios/patroni-failover.yaml",
            f"(the leader's node lost: Patroni and PostgreSQL SIGKILLed together) run {repeat}",
            "times with each setting. RTO = first ok write through HAProxy after the fault; its",
            "parts (medians) from the `patroni` probe: detection (fault -> the old leader no",
            "longer answers as primary), election (-> a new member answers as primary),",
            "reconnect (-> first ok write). Lab up / down are the record's setup and teardown",
            "phases; wall time is the whole `drills run`.",
            "",
            table,
            "",
            targets(fast),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rows, runs = [], []
    with tempfile.TemporaryDirectory(prefix="drills-bench-patroni-") as tmp:
        for settings in SETTINGS:
            runs = []
            for number in range(args.repeat):
                print(f"{settings}: run {number + 1}/{args.repeat}", file=sys.stderr)
                runs.append(run_once(settings, Path(tmp)))
            rows.append(_row(runs))
    text = section(rows, args.repeat, runs)  # the last setting is the fast one
    replace_section(args.output, "patroni", text)
    print(text)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
