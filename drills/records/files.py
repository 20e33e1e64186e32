"""The files of a reports directory: records are written atomically (`drills.files`) and
listed by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drills.files import write_atomically as write_atomically  # re-exported


def record_text(data: dict[str, Any]) -> str:
    """A record's file content: its keys in the order given, two-space indents."""
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def record_files(directory: Path) -> list[Path]:
    """Run records by name (their names start with the UTC start)."""
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))
