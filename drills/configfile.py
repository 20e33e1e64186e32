"""Loading a YAML file into a model, every problem one line naming file, line and key."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from drills.errors import Problem, ScenarioError
from drills.yamlsource import YamlSyntaxError, load

M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, model: type[M], what: str) -> M:
    """Read `path` as `model`; ScenarioError with every problem found otherwise."""
    file = str(path)
    try:
        source = load(path.read_text(encoding="utf-8"), file)
    except OSError as exc:
        raise ScenarioError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError:
        raise ScenarioError([Problem(file, None, "", "not UTF-8 text")]) from None
    except YamlSyntaxError as exc:
        raise ScenarioError([Problem(file, exc.line, "", f"invalid YAML: {exc.message}")]) from exc
    problems = [
        Problem(file, line, ".".join(map(str, key)), "duplicate key")
        for key, line in source.duplicates
    ]
    if not isinstance(source.data, dict):
        got = "an empty file" if source.data is None else type(source.data).__name__
        problems.append(
            Problem(file, source.line_of(()) or 1, "", f"{what} is a mapping; got {got}")
        )
        raise ScenarioError(problems)
    try:
        loaded = model.model_validate(source.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            if error["type"] == "unknown_key":  # point at the key itself, not its parent
                loc = (*loc, str((error.get("ctx") or {}).get("key", "")))
            key = ".".join(str(p) for p in loc)
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "missing (required)"
            problems.append(Problem(file, source.line_of(loc), key, message))
        raise ScenarioError(sorted(problems, key=lambda p: p.line or 0)) from None
    if problems:
        raise ScenarioError(problems)
    return loaded
