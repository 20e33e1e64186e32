"""The hash chain of run records: `drills verify` catches a changed, removed or inserted
record, a changed history, and a one-byte change anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drills.records import check_chain, write_chained
from drills.records.chain import chain_head
from tests.paths import REPO


def _write(directory: Path, stamp: str, verdict: str = "pass") -> Path:
    history = directory / f"{stamp}-x.history.jsonl"
    history.write_text('{"type":"clock","mono_ns":1,"wall_ns":2}\n')
    record = {
        "schema_version": 1,
        "run_id": f"{stamp}-x",
        "scenario": {"name": "x", "file": "x.yaml", "sha256": "0" * 64},
        "verdict": verdict,
        "measurements": {"rto_s": 1.25, "rpo_s": 0.0},
        "history": history.name,
    }
    path = directory / f"{stamp}-x.json"
    write_chained(path, record)
    return path


@pytest.fixture
def chain(tmp_path: Path) -> list[Path]:
    return [_write(tmp_path, f"20261123T20000{i}Z") for i in range(4)]


def _verify(directory: Path) -> tuple[int, str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "drills", "verify", "--reports-dir", str(directory)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def test_intact_chain(chain: list[Path]) -> None:
    first = json.loads(chain[0].read_text())
    second = json.loads(chain[1].read_text())
    assert first["chain"]["previous"] is None
    assert second["chain"]["previous"] == chain[0].name
    assert len(second["chain"]["previous_sha256"]) == 64
    code, out, err = _verify(chain[0].parent)
    assert (code, err) == (0, "")
    assert out.startswith(f"head: #4 {chain[3].name} (anchor 4:")
    unsigned = "4 unsigned: not authenticated (no signing key given)"
    assert out.endswith(f"\n4 records checked: chain intact; {unsigned}\n")


@pytest.mark.parametrize("victim", [0, 1, 3])
def test_one_byte_change_is_caught(chain: list[Path], victim: int) -> None:
    path = chain[victim]
    text = path.read_text()
    path.write_text(text.replace('"rto_s": 1.25', '"rto_s": 1.26'))
    code, out, err = _verify(path.parent)
    assert code == 1
    assert f"{path}: content changed after it was written" in err
    if victim < 3:  # the next record's link to it breaks too
        assert f"{chain[victim + 1]}: broken link: {path.name} changed" in err
    assert "first:" in out and path.name in out


def test_removed_record_breaks_the_link(chain: list[Path]) -> None:
    chain[1].unlink()
    code, _, err = _verify(chain[0].parent)
    assert code == 1
    assert f"{chain[2]}: broken link: it follows '{chain[1].name}'" in err


def test_changed_history_is_caught(chain: list[Path]) -> None:
    history = chain[2].parent / json.loads(chain[2].read_text())["history"]
    history.write_text(history.read_text() + "\n")
    code, _, err = _verify(chain[0].parent)
    assert code == 1
    assert f"{chain[2]}: its history {history.name} changed" in err


def test_missing_directory_is_exit_2(tmp_path: Path) -> None:
    code, _, err = _verify(tmp_path / "nope")
    assert code == 2 and err.startswith("drills: ") and err.count("\n") == 1


def test_overlapping_drills_chain_in_the_order_they_finish(tmp_path: Path) -> None:
    # Two drills on different targets overlap: the one that started later finishes first.
    later = _write(tmp_path, "20261123T200010Z")
    earlier = _write(tmp_path, "20261123T200005Z")
    assert json.loads(earlier.read_text())["chain"]["previous"] == later.name
    code, out, err = _verify(tmp_path)
    assert (code, err) == (0, "")
    assert out.endswith(
        "2 records checked: chain intact; 2 unsigned: not authenticated (no signing key given)\n"
    )
    _write(tmp_path, "20261123T200020Z")
    assert _verify(tmp_path)[0] == 0


def test_a_lost_head_file_is_rebuilt_from_the_records(tmp_path: Path) -> None:
    first = _write(tmp_path, "20261123T200010Z")
    (tmp_path / ".chain-head").unlink()
    second = _write(tmp_path, "20261123T200005Z")
    assert json.loads(second.read_text())["chain"]["previous"] == first.name
    assert _verify(tmp_path)[0] == 0


def test_removing_the_newest_record_is_caught(chain: list[Path]) -> None:
    chain[-1].unlink()
    code, _out, err = _verify(chain[-1].parent)
    assert code == 1
    assert f"{chain[-1]}: the newest record (.chain-head, #4) is missing" in err


def test_a_crash_before_the_head_moved_does_not_fork_the_chain(tmp_path: Path) -> None:
    first = _write(tmp_path, "20261123T200001Z")
    (tmp_path / ".chain-head").write_text("nonexistent.json 0\n")  # as if never updated
    second = _write(tmp_path, "20261123T200002Z")
    assert json.loads(second.read_text())["chain"]["previous"] == first.name
    assert _verify(tmp_path)[0] == 0


@pytest.mark.parametrize(
    "junk",
    [
        {"chain": {"seq": 1000000000}},
        {"chain": {"seq": 1000000000}, "self_sha256": "0" * 64},
        {"chain": {"seq": 3}, "self_sha256": "0" * 64},  # among the genuine ones
    ],
)
def test_a_planted_junk_record_is_not_chained_after(
    chain: list[Path], junk: dict[str, object]
) -> None:
    directory = chain[0].parent
    planted = directory / "20261123T200005Z-junk.json"
    planted.write_text(json.dumps(junk))
    assert chain_head(directory) == (chain[-1], 4)
    newer = _write(directory, "20261123T200009Z")
    link = json.loads(newer.read_text())["chain"]
    assert (link["previous"], link["seq"]) == (chain[-1].name, 5)
    found = check_chain(directory)
    assert set(found.failing) == {planted}, found.problems


def test_a_record_after_a_changed_newest_one_follows_the_last_intact_one(
    chain: list[Path],
) -> None:
    text = chain[-1].read_text()
    chain[-1].write_text(text.replace('"rto_s": 1.25', '"rto_s": 1.26'))
    newer = _write(chain[0].parent, "20261123T200009Z")
    assert json.loads(newer.read_text())["chain"]["previous"] == chain[-2].name
    found = check_chain(chain[0].parent)
    assert set(found.failing) == {chain[-1]}, found.problems
