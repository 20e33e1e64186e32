"""`read_runs` (drills/records/runs.py) with verification: it reads only what `check_chain`
checked, so a file added or replaced after the check is not read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drills.records import ChainCheck, load_runs, runs, write_chained
from drills.records.signing import SigningKey


def _record(stamp: str, verdict: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "run_id": f"{stamp}-x",
        "scenario": {"name": "x", "file": "x.yaml", "sha256": "0" * 64},
        "started_at": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T02:00:00.000Z",
        "finished_at": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T02:00:00.000Z",
        "verdict": verdict,
        "objectives": {"rto_s": 1800.0, "rpo_s": 300.0, "availability": 0.9999},
        "check": {"service_probe": "reads", "write_probe": None, "stable": 3},
        "measurements": {"rto_s": 1.2, "downtime_s": 1.2},
        "history": f"{stamp}-x.history.jsonl",
    }


def test_a_file_added_or_replaced_after_the_check_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    genuine = tmp_path / "20261005T020000Z-x.json"
    write_chained(genuine, _record("20261005T020000Z", "fail"), None)
    real_check = runs.check_chain

    def check_then_swap(directory: Path, key: SigningKey | None = None) -> ChainCheck:
        found = real_check(directory, None)
        forged = _record("20261020T020000Z", "pass")
        (directory / "20261020T020000Z-x.json").write_text(json.dumps(forged))
        genuine.write_text(genuine.read_text().replace('"fail"', '"pass"'))
        return found

    monkeypatch.setattr(runs, "check_chain", check_then_swap)
    left_out: list[str] = []
    read = load_runs(tmp_path, left_out, key=None)
    assert [(r.path, r.verdict.value) for r in read] == [(genuine, "fail")]
    assert left_out == []
