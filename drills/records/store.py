"""Reading one run record into the model, and writing one through it into the chain."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from drills.errors import RecordError
from drills.records.chain import write_chained
from drills.records.model import SCHEMA_VERSION, RunRecord
from drills.records.signing import SigningKey


def read_record_data(path: Path) -> dict[str, Any]:
    """The JSON of a run record as written, checked only for being one (`schema_version`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror}") from exc
    return record_data(raw, path)


def record_data(raw: bytes, path: Path) -> dict[str, Any]:
    """`raw`, the bytes of the file at `path`, as a run record's JSON (`read_record_data`)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise RecordError(f"{path}: not a drills run record (schema_version {SCHEMA_VERSION})")
    return data


def parse_record(data: dict[str, Any], path: Path) -> RunRecord:
    """`data` as a typed record; a missing or malformed key is one line naming the file."""
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        raise RecordError(_problem(path, exc)) from None


# What every reader needs first, reported before anything else a record lacks.
_IDENTITY = ("scenario", "verdict", "started_at")


def _problem(path: Path, exc: ValidationError) -> str:
    def rank(error: ErrorDetails) -> int:
        key = error["loc"][0] if error["loc"] else ""
        return _IDENTITY.index(key) if key in _IDENTITY else len(_IDENTITY)

    first = min(exc.errors(include_url=False), key=rank)
    where = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return f"{path}: record lacks {where!r}"
    return f"{path}: not a valid run record: {where}: {first['msg']}"


def load_record(path: Path) -> RunRecord:
    return parse_record(read_record_data(path), path)


# What identifies the run and its files: never masked, even if a secret occurs in it.
_IDENTITY_KEYS = {(): ("run_id", "history"), ("scenario",): ("name", "file", "sha256")}


def _redacted(data: dict[str, Any], redact: Callable[[Any], Any]) -> dict[str, Any]:
    redacted: dict[str, Any] = redact(data)
    for path, keys in _IDENTITY_KEYS.items():
        source, target = data, redacted
        for part in path:
            source, target = source[part], target[part]
        target.update({key: source[key] for key in keys if key in source})
    return redacted


def write_record(
    path: Path,
    record: RunRecord,
    redact: Callable[[Any], Any] = lambda data: data,
    key: SigningKey | None = None,
) -> RunRecord:
    """Write `record` as the next link of its directory's chain, through `redact` (secrets
    never reach the file), signed with `key` if given; return the record as written."""
    data = _redacted(record.data(), redact)
    write_chained(path, data, key)
    return parse_record(data, path)
