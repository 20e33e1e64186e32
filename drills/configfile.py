"""Loading a YAML file into a model, every problem one line naming file, line and key.

Scenarios, drills.yaml and schedules all read through `read_source` and locate validation
errors with `problems_from`; they differ only in how a key path is written (`steps[3].kill`
in a scenario, `required.0.month` in the others).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from drills.errors import Problem, ScenarioError
from drills.yamlsource import MAX_BYTES, Path_, Source, YamlLimitError, YamlSyntaxError, load

M = TypeVar("M", bound=BaseModel)
KeyStyle = Callable[[Path_], str]


def dotted_key(path: Path_) -> str:
    return ".".join(map(str, path))


def indexed_key(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_source(
    path: Path, what: str, max_bytes: int = MAX_BYTES, limit_key: str = ""
) -> tuple[bytes, Source]:
    """The file's bytes and its YAML with lines; ScenarioError unless it reads as a mapping of
    at most `max_bytes` (the setting `limit_key` of drills.yaml, if any, changes it)."""
    file = str(path)
    raw = _read_at_most(path, max_bytes + 1)
    if len(raw) > max_bytes:
        hint = f" ({limit_key} in drills.yaml)" if limit_key else ""
        line = raw.count(b"\n", 0, max_bytes) + 1
        message = f"larger than the limit of {max_bytes} bytes{hint}"
        raise ScenarioError([Problem(file, line, "", message)])
    try:
        source = load(raw.decode("utf-8"), file, max_bytes)
    except UnicodeDecodeError:
        raise ScenarioError([Problem(file, None, "", "not UTF-8 text")]) from None
    except YamlLimitError as exc:
        raise ScenarioError([Problem(file, exc.line, "", exc.message)]) from exc
    except YamlSyntaxError as exc:
        raise ScenarioError([Problem(file, exc.line, "", f"invalid YAML: {exc.message}")]) from exc
    if not isinstance(source.data, dict):
        got = "an empty file" if source.data is None else type(source.data).__name__
        line = source.line_of(()) or 1
        raise ScenarioError([Problem(file, line, "", f"{what} is a mapping of keys; got {got}")])
    return raw, source


def _read_at_most(path: Path, size: int) -> bytes:
    """The first `size` bytes of the file: a huge one is not read whole to be refused."""
    try:
        with path.open("rb") as file:
            return file.read(size)
    except OSError as exc:
        raise ScenarioError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from exc


def duplicates(source: Source, key: KeyStyle) -> list[Problem]:
    return [
        Problem(source.file, line, key(path), "duplicate key") for path, line in source.duplicates
    ]


def _locate(data: Any, loc: Path_) -> tuple[Path_, str | None]:
    """Follow a pydantic location through the data, skipping union tags; return the path that
    exists and the first key that does not (a missing or unknown key)."""
    path: Path_ = ()
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if in_dict or in_list:
            path, current = (*path, part), current[part]
        elif isinstance(current, dict) and current.get("kind") == part:
            continue
        elif isinstance(current, dict) and isinstance(part, str):
            return path, part
        else:
            break
    return path, None


def _problem(error: Any, source: Source, data: Any, key: KeyStyle) -> Problem:
    path, missing = _locate(data, tuple(error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    kind = error["type"]
    ctx = error.get("ctx") or {}
    line_path = path
    if kind == "unknown_key":  # point at the key itself, not its parent
        line_path = (*path, ctx["key"])
        missing = ctx["key"]
    elif kind == "missing":
        message = "missing (required)"
    elif kind == "union_tag_invalid":
        missing = "kind"
        line_path = (*path, "kind")
        message = f"unknown kind {ctx.get('tag')!r} (expected one of: {ctx.get('expected_tags')})"
    elif kind == "union_tag_not_found":
        missing = "kind"
        message = "missing (required): every entry here names its kind"
    where = key((*path, missing) if missing else path)
    return Problem(source.file, source.line_of(line_path), where, message)


def problems_from(
    exc: ValidationError, source: Source, data: Any, key: KeyStyle = dotted_key
) -> list[Problem]:
    """One located problem per validation error of `data` (read from `source`)."""
    return [_problem(error, source, data, key) for error in exc.errors(include_url=False)]


def load_model(path: Path, model: type[M], what: str) -> M:
    """Read `path` as `model`; ScenarioError with every problem found otherwise."""
    _, source = read_source(path, what)
    problems = duplicates(source, dotted_key)
    try:
        loaded = model.model_validate(source.data)
    except ValidationError as exc:
        problems += problems_from(exc, source, source.data)
        raise ScenarioError(sorted(problems, key=lambda p: p.line or 0)) from None
    if problems:
        raise ScenarioError(problems)
    return loaded
