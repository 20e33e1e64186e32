"""docs/benchmarks.md is written by more than one benchmark: each owns the text between its
own markers and leaves the rest of the file as it is."""

from __future__ import annotations

from pathlib import Path


def begin(name: str) -> str:
    return f"<!-- bench:{name}:begin -->"


def end(name: str) -> str:
    return f"<!-- bench:{name}:end -->"


def replace_section(path: Path, name: str, body: str) -> None:
    """Put `body` between the markers of section `name` in `path` (appended when absent)."""
    text = path.read_text() if path.exists() else ""
    section = f"{begin(name)}\n{body.rstrip()}\n{end(name)}"
    if begin(name) in text and end(name) in text:
        head, rest = text.split(begin(name), 1)
        tail = rest.split(end(name), 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip() + ("\n\n" if text.strip() else "") + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
