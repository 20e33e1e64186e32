"""The files drills writes: created without following symlinks, written atomically, and the
private state directory.

Every file is created with `O_CREAT | O_EXCL | O_NOFOLLOW`: whatever already sits at the name
(a symlink planted to make a root drill overwrite another file, too) makes the open fail
instead of being followed. A mode other than the umask's is set with `fchmod` on the open
descriptor, never by name.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import IO

from drills.errors import PathError

NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
TEMP_ATTEMPTS = 16
STATE_DIR_MODE = 0o700


def open_new_nofollow(path: Path, mode: int | None = None) -> int:
    """Create `path` and open it for writing; fail (FileExistsError) if anything is there
    already, a symlink included. `mode`: set on the descriptor; None: 0666 less the umask."""
    fd = os.open(path, NEW_FILE, 0o600 if mode is not None else 0o666)
    if mode is not None:
        try:
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    """All of `data`, or OSError (a full disk ends a short write with ENOSPC)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_new(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a new file at `path` (FileExistsError if something is there)."""
    fd = open_new_nofollow(path, mode)
    try:
        write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def open_nofollow(path: Path, mode: str) -> IO[bytes]:
    """Open an existing or new file at `path` without following a symlink there: "wb" creates
    or truncates, "ab" creates or appends, "r+b" updates an existing file. For files in
    directories another user owns (a lab's, run by its OS user): root must not write through
    a link that user planted."""
    flags = {
        "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        "r+b": os.O_RDWR,
    }[mode]
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    return os.fdopen(fd, mode)


def write_nofollow(path: Path, text: str) -> None:
    """`path`'s new content, written without following a symlink at `path`."""
    with open_nofollow(path, "wb") as out:
        out.write(text.encode("utf-8"))


def chown_nofollow(path: Path, uid: int, gid: int) -> None:
    """Give `path` to `uid`:`gid`; a symlink at `path` gets the owner, not what it names."""
    os.chown(path, uid, gid, follow_symlinks=False)


def copy_nofollow(source: Path, dest: Path, owner: tuple[int, int] | None = None) -> None:
    """Copy `source` to `dest` with its mode (and `owner`), following a symlink at neither:
    root reading through a planted link could hand another file's content to the link's
    owner, and writing through one would overwrite any file."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as src:
        data, mode = src.read(), os.fstat(src.fileno()).st_mode
    with open_nofollow(dest, "wb") as out:
        out.write(data)
        os.fchmod(out.fileno(), stat.S_IMODE(mode))
        if owner is not None:
            os.fchown(out.fileno(), *owner)


def open_lock(path: Path) -> IO[bytes]:
    """A lock file, created if missing, opened without following a symlink at `path`."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    return os.fdopen(fd, "r+b")


def os_error_text(exc: OSError) -> str:
    """`No space left on device (ENOSPC)`: the reason and its errno name."""
    name = errno.errorcode.get(exc.errno or 0)
    reason = exc.strerror or str(exc)
    return f"{reason} ({name})" if name else reason


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def _open_temp(path: Path, mode: int | None) -> tuple[Path, int]:
    for _ in range(TEMP_ATTEMPTS):
        tmp = _temp_name(path)
        try:
            return tmp, open_new_nofollow(tmp, mode)
        except FileExistsError:
            continue  # taken, or planted: another name
    raise FileExistsError(
        errno.EEXIST, f"no free temp file name after {TEMP_ATTEMPTS} tries", str(path)
    )


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (a new or renamed file) durable."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_atomically(path: Path, text: str, mode: int | None = None) -> None:
    """Temp file in the same directory, fsync, rename: readers see the old file or the new.

    The temp file is new (a name already taken, by a symlink too, is never opened) and the
    rename replaces whatever is at `path` without following it. `mode`: as `open_new_nofollow`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _open_temp(path, mode)
    try:
        try:
            write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can use (mode 0700): created so if missing,
    tightened if group or others had access; a symlink, a non-directory or a directory of
    another user is refused (PathError)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, STATE_DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise PathError(f"{path}: cannot create the directory: {exc.strerror}") from exc
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        what = "a symbolic link" if path.is_symlink() else f"unusable ({exc.strerror})"
        raise PathError(f"{path}: {what}: drills keeps its state only in a real directory") from exc
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise PathError(
                f"{path}: owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}): "
                "another user could change drills' journals and locks"
            )
        if stat.S_IMODE(info.st_mode) != STATE_DIR_MODE:
            os.fchmod(fd, STATE_DIR_MODE)
    finally:
        os.close(fd)
    return path


def unsafe_dir(path: Path, owners: set[int]) -> str | None:
    """Why `path` is not a directory drills may act on as it finds it (None: it may): it must
    exist, be a directory and not a symbolic link (its last component; the directories above
    are not checked), be owned by a uid in `owners`, and be writable by its owner only."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"unusable ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "not a directory"
    if info.st_uid not in owners:
        return f"owned by uid {info.st_uid}, not by uid {' or '.join(map(str, sorted(owners)))}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by its group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None
