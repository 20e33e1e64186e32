"""The files of a reports directory: records are written atomically and listed by name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomically(path: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename: readers see the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a record is for readers
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def record_text(data: dict[str, Any]) -> str:
    """A record's file content: its keys in the order given, two-space indents."""
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def record_files(directory: Path) -> list[Path]:
    """Run records by name (their names start with the UTC start)."""
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))
