"""Signed records and the anchored head: whoever can write the reports directory but lacks the
key cannot rewrite a record and re-chain it, nor remove the newest records unnoticed by an
outside system that anchored the head."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drills.errors import DrillsError
from drills.records import Anchor, check_chain, self_digest, sha256_file, signing_key, write_chained
from drills.records.signing import KEY_ENV, KEY_FILE_ENV, SigningKey, key_from_file
from tests.paths import REPO

SECRET = "correct horse battery staple, 32+"


def _record(directory: Path, stamp: str, verdict: str) -> dict[str, object]:
    history = directory / f"{stamp}-x.history.jsonl"
    history.write_text('{"type":"clock","mono_ns":1,"wall_ns":2}\n')
    return {
        "schema_version": 1,
        "run_id": f"{stamp}-x",
        "scenario": {"name": "x", "file": "x.yaml", "sha256": "0" * 64},
        "verdict": verdict,
        "history": history.name,
    }


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "drills.key"
    path.parent.mkdir()
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def signed(tmp_path: Path, key_file: Path) -> list[Path]:
    runs = tmp_path / "runs"
    runs.mkdir()
    key = key_from_file(key_file, runs)
    paths = []
    for i, verdict in enumerate(["pass", "fail", "fail", "fail"]):
        stamp = f"20261123T20000{i}Z"
        path = runs / f"{stamp}-x.json"
        write_chained(path, _record(runs, stamp, verdict), key)
        paths.append(path)
    return paths


def _verify(directory: Path, *extra: str, key_file: Path | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, KEY_FILE_ENV)}
    if key_file is not None:
        env[KEY_FILE_ENV] = str(key_file)
    config = directory.parent / "verify-drills.yaml"  # not the machine's drills.yaml
    config.write_text("version: 1\n")
    env["DRILLS_CONFIG"] = str(config)
    result = subprocess.run(
        [sys.executable, "-m", "drills", "verify", "--reports-dir", str(directory), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def _rechain(path: Path, previous: Path | None, **changes: object) -> None:
    """What someone who can write the directory, but has no key, does: change a record and
    recompute every digest the chain holds."""
    data = json.loads(path.read_text())
    data.update(changes)
    if previous is not None:
        data["chain"]["previous_sha256"] = sha256_file(previous)
    data.pop("signature", None)
    data["self_sha256"] = self_digest(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_signed_records_verify_with_the_key(signed: list[Path], key_file: Path) -> None:
    data = json.loads(signed[0].read_text())
    key = key_from_file(key_file, None)
    assert data["signature"]["alg"] == "hmac-sha256"
    assert data["signature"]["key_id"] == key.key_id and len(key.key_id) == 16
    assert SECRET not in signed[0].read_text()
    code, out, err = _verify(signed[0].parent, key_file=key_file)
    assert (code, err) == (0, "")
    assert out.endswith(
        f"4 records checked: chain intact; every record signed with key {key.key_id}\n"
    )


def test_a_record_rechained_without_the_key_fails_verify(
    signed: list[Path], key_file: Path
) -> None:
    _rechain(signed[1], signed[0], verdict="pass")
    _rechain(signed[2], signed[1])
    _rechain(signed[3], signed[2])
    assert check_chain(signed[0].parent).problems == []  # the bare hash chain is fooled
    code, out, err = _verify(signed[0].parent, key_file=key_file)
    assert code == 1
    for path in signed[1:]:
        assert (
            f"{path}: unsigned (written without the signing key, or its signature removed)" in err
        )
    assert "first:" in out


def test_a_forged_signature_or_another_key_fails(signed: list[Path], key_file: Path) -> None:
    data = json.loads(signed[3].read_text())
    data["verdict"] = "pass"
    data["self_sha256"] = self_digest(data)  # the signature kept: it no longer matches
    signed[3].write_text(json.dumps(data))
    other = SigningKey(b"another key, sixteen bytes or more", "test")
    data = json.loads(signed[2].read_text())
    data["signature"] = other.signature(data)
    signed[2].write_text(json.dumps(data))
    code, _, err = _verify(signed[0].parent, key_file=key_file)
    assert code == 1
    assert f"{signed[3]}: signature does not match" in err
    assert f"{signed[2]}: signed with another key ('{other.key_id}'" in err


def test_without_a_key_verify_says_the_records_are_not_authenticated(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    write_chained(runs / "20261123T200000Z-x.json", _record(runs, "20261123T200000Z", "pass"))
    code, out, _ = _verify(runs)
    assert code == 0
    assert "1 unsigned: not authenticated (no signing key given)" in out


def test_removing_the_newest_record_and_the_head_is_caught_with_expect_head(
    signed: list[Path], key_file: Path
) -> None:
    runs = signed[0].parent
    code, out, _ = _verify(runs, key_file=key_file)
    anchor = out.splitlines()[0].split("anchor ")[1].rstrip(")")
    assert anchor.startswith("4:")
    signed[3].unlink()
    (runs / ".chain-head").unlink()
    assert _verify(runs, key_file=key_file)[0] == 0  # nothing inside the directory tells
    code, out, err = _verify(runs, "--expect-head", "4", key_file=key_file)
    assert code == 1
    assert "the chain ends at #3, but #4 was anchored" in err
    assert _verify(runs, "--expect-head", "3", key_file=key_file)[0] == 0


def test_a_replaced_head_is_caught_by_its_anchored_digest(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    path = runs / "20261123T200000Z-x.json"
    write_chained(path, _record(runs, "20261123T200000Z", "fail"))
    anchor = check_chain(runs).head
    assert anchor is not None
    path.unlink()
    (runs / ".chain-head").unlink()
    write_chained(path, _record(runs, "20261123T200000Z", "pass"))  # re-written: seq 1 again
    assert _verify(runs, "--expect-head", "1")[0] == 0
    code, _, err = _verify(runs, "--expect-head", anchor.anchor)
    assert code == 1
    assert f"{path}: it is #1, but not the record anchored" in err


@pytest.mark.parametrize("text", ["x", "-1", "4:xyz", "4:abc"])
def test_a_malformed_expect_head_is_exit_2(tmp_path: Path, text: str) -> None:
    with pytest.raises(DrillsError, match="--expect-head"):
        Anchor.parse(text)
    code, _, err = _verify(tmp_path, "--expect-head", text)
    assert code == 2 and err.count("\n") == 1 and "--expect-head" in err


def test_a_key_file_inside_the_records_or_open_to_others_is_refused(
    tmp_path: Path, key_file: Path
) -> None:
    inside = tmp_path / "runs" / ".key"
    inside.parent.mkdir()
    inside.write_text(SECRET)
    inside.chmod(0o600)
    with pytest.raises(DrillsError, match="inside the records directory"):
        key_from_file(inside, tmp_path / "runs")
    key_file.chmod(0o640)
    with pytest.raises(DrillsError, match=r"open to its group or others \(mode 0640\): chmod 600"):
        key_from_file(key_file, tmp_path / "runs")
    key_file.chmod(0o600)
    key_file.write_text("short")
    with pytest.raises(DrillsError, match="at least 16 bytes"):
        key_from_file(key_file, tmp_path / "runs")


def test_the_key_is_found_in_the_environment_or_drills_yaml(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    config = tmp_path / "keys" / "drills.yaml"
    config.write_text("version: 1\nsigning_key_file: drills.key\n")
    from_config = signing_key(tmp_path / "runs", config)
    assert from_config is not None and from_config.source == str(key_file)
    assert signing_key(tmp_path / "runs", None) is None
    monkeypatch.setenv(KEY_ENV, SECRET)
    from_env = signing_key(tmp_path / "runs", config)
    assert from_env is not None and from_env.key_id == from_config.key_id
    assert SECRET not in repr(from_env)
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "absent.key"))
    with pytest.raises(DrillsError, match=r"absent\.key: cannot read the signing key"):
        signing_key(tmp_path / "runs", config)
