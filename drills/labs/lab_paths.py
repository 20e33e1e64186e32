"""Which paths a crash journal may name: `drills recover` removes lab directories and writes
files back into them, so it acts only on paths that are, or lie inside, a lab directory as
drills makes them: a directory directly in the temporary directory, named with the lab prefix.
"""

from __future__ import annotations

import os
import stat
import tempfile

LAB_PREFIX = "drills-lab-"


def _temp_dirs() -> tuple[str, str]:
    temp = tempfile.gettempdir()
    return temp, os.path.realpath(temp)


def lab_directory_problem(path: str, owner: int | None) -> str | None:
    """Why `path` is not a lab directory drills made (None: it is, or it is gone). Its owner
    must be root, the user running drills, or `owner` (the lab's OS user)."""
    temp, _ = _temp_dirs()
    name = os.path.basename(path)
    if os.path.normpath(path) != path or os.path.dirname(path) not in _temp_dirs():
        return f"not a directory directly in {temp}"
    if not name.startswith(LAB_PREFIX) or name == LAB_PREFIX:
        return f"its name does not start with {LAB_PREFIX}"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None  # removed already: only its processes are left to find
    except OSError as exc:
        return f"cannot be examined: {exc.strerror}"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        return "not a directory (a symbolic link, or another kind of file)"
    if info.st_uid not in (0, os.geteuid(), owner):
        return f"owned by uid {info.st_uid}, neither root, drills' user nor the lab's"
    return None


def in_lab_problem(path: str) -> str | None:
    """Why `path` is not a file inside a lab directory, reached without symbolic links."""
    temp, real = _temp_dirs()
    inside = [path[len(d) + 1 :] for d in (temp, real) if path.startswith(d.rstrip("/") + "/")]
    parts = inside[0].split("/") if inside else []
    if os.path.normpath(path) != path or len(parts) < 2 or parts[0] == LAB_PREFIX:
        return f"{path} is not inside a lab directory ({temp}/{LAB_PREFIX}...)"
    if not parts[0].startswith(LAB_PREFIX):
        return f"{path} is not inside a lab directory ({temp}/{LAB_PREFIX}...)"
    if os.path.realpath(os.path.dirname(path)) != os.path.join(real, *parts[:-1]):
        return f"{path} is reached through a symbolic link"
    return None
