"""Secret values are masked wherever the harness writes text."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from drills.history import Clock, HistoryLog, Op, Outcome
from drills.records import store, verify_chain
from drills.runner import RunOptions, RunResult, run_drill
from drills.secrets import MASK, Redactor


def test_every_occurrence_is_masked() -> None:
    redact = Redactor({"hunter2"})
    assert redact.text("password=hunter2 again hunter2") == f"password={MASK} again {MASK}"


def test_the_longest_secret_is_masked_first_so_no_part_of_it_shows() -> None:
    redact = Redactor({"abc", "abcdef"})
    assert redact.text("x abcdef y abc") == f"x {MASK} y {MASK}"


def test_values_too_short_to_be_secrets_are_left_alone() -> None:
    redact = Redactor({"ab", ""})
    assert redact.secrets == []
    assert redact.text("ab cd") == "ab cd"


def test_secrets_added_later_join_the_ones_known() -> None:
    redact = Redactor({"first-secret"})
    redact.add({"second-secret", "first-secret"})
    assert redact.text("first-secret second-secret") == f"{MASK} {MASK}"
    assert len(redact.secrets) == 2


def test_nested_records_are_masked_in_values_and_lists_never_in_keys() -> None:
    # Keys are the record's structure (probe names, step facts), not data: masking one would
    # change what readers look up (issue 15: masking never touches record keys).
    redact = Redactor({"s3cret"})
    record = {"dsn": "password=s3cret", "s3cret": [1, "a s3cret", {"n": 2.5}], "none": None}
    assert redact.deep(record) == {
        "dsn": f"password={MASK}",
        "s3cret": [1, f"a {MASK}", {"n": 2.5}],
        "none": None,
    }


def test_without_secrets_the_value_is_returned_as_is() -> None:
    record = {"a": ["b"]}
    assert Redactor().deep(record) is record


def test_the_history_never_holds_a_secret() -> None:
    log = HistoryLog(Clock(0, 0), redact=Redactor({"s3cret"}).text)
    log.add_op(Op("reads", 1, 0, 1, Outcome.FAIL, detail="auth failed for s3cret"))
    assert log.history.ops[0].detail == f"auth failed for {MASK}"


# --- issue 15 item 5: through a whole drill (no servers: a TCP listener of the test's own) ---

HOSTILE = "pa;ss $(touch pwned) `id` 'q' \"d\" $HOME"


def _drill(tmp_path: Path, name: str, steps: str) -> RunResult:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.listen(64)
    try:
        scenario = tmp_path / f"{name}.yaml"
        scenario.write_text(
            f"name: {name}\n"
            f"probes: {{port: {{kind: tcp, port: {listener.getsockname()[1]}, interval: 50ms}}}}\n"
            f"service_probe: port\nsteps:\n{steps}"
        )
        (tmp_path / "drills.yaml").write_text("version: 1\n")
        options = RunOptions(
            reports_dir=tmp_path / "runs",
            state_dir=tmp_path / "state",
            live=False,
            config=tmp_path / "drills.yaml",
        )
        return run_drill(scenario, options)
    finally:
        listener.close()


def test_a_hostile_secret_reaches_exec_intact_and_nowhere_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRILLS_TEST_HOSTILE", HOSTILE)
    monkeypatch.chdir(tmp_path)  # where `touch pwned` would land, were it run
    out = tmp_path / "received.txt"
    result = _drill(
        tmp_path,
        "hostile-secret",
        f"  - exec: printf %s ${{env:DRILLS_TEST_HOSTILE}} > {out}\n"
        "  - exec: echo got ${env:DRILLS_TEST_HOSTILE}\n"
        "  - exec: echo ${env:DRILLS_TEST_HOSTILE} >&2; exit 3\n",
    )
    assert out.read_text() == HOSTILE  # one argument, not shell code
    assert not (tmp_path / "pwned").exists()
    assert result.record.timeline[1].detail == f"got {MASK}"
    assert f'exec exited 3: echo "$DRILLS_SECRET_1" >&2; exit 3: {MASK}' in (
        result.record.error or ""
    )
    captured = capsys.readouterr()
    texts = [captured.out, captured.err]
    texts += [p.read_bytes().decode(errors="replace") for p in (tmp_path / "runs").iterdir()]
    for text in texts:
        assert HOSTILE not in text
        assert "pa;ss" not in text


def test_a_secret_inside_the_run_id_leaves_the_record_whole_and_verifiable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_TEST_LEAKY", "leaky")
    result = _drill(tmp_path, "leaky-drill", "  - exec: echo ${env:DRILLS_TEST_LEAKY} twice\n")
    record = json.loads(result.record_path.read_text())
    assert record["run_id"].endswith("-leaky-drill")
    assert result.record_path.name == f"{record['run_id']}.json"
    assert record["history"] == result.history_path.name
    assert record["scenario"]["name"] == "leaky-drill"
    assert record["timeline"][0]["detail"] == f"{MASK} twice"  # the value itself is masked
    checked, problems = verify_chain(tmp_path / "runs")
    assert (checked, problems) == (1, [])
    assert record["chain"]["history_sha256"] is not None  # the history was found and pinned


def test_the_run_id_is_kept_whole_in_any_text() -> None:
    redact = Redactor({"leaky"})
    redact.keep("20261202T200000Z-leaky-drill")
    text = "lab drills-20261202T200000Z-leaky-drill: password leaky"
    assert redact.text(text) == f"lab drills-20261202T200000Z-leaky-drill: password {MASK}"


def test_a_record_keeps_its_identity_fields_whatever_the_redactor() -> None:
    data = {
        "run_id": "r-leaky",
        "history": "r-leaky.history.jsonl",
        "scenario": {
            "name": "leaky",
            "file": "/s/leaky.yaml",
            "sha256": "ab",
            "description": "leaky",
        },
        "error": "leaky",
    }
    kept = store._redacted(data, Redactor({"leaky"}).deep)
    assert kept == {
        "run_id": "r-leaky",
        "history": "r-leaky.history.jsonl",
        "scenario": {"name": "leaky", "file": "/s/leaky.yaml", "sha256": "ab", "description": MASK},
        "error": MASK,
    }
