"""The bearer token of the proxy API: where `drills proxy` takes it, where drills' client finds it.

Never a command-line argument (other users see those in `ps`): a file readable by its owner
only (`--token-file`), the environment variable `DRILLS_PROXY_TOKEN`, or one generated at start
and printed once.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from drills.errors import DrillsError

TOKEN_ENV = "DRILLS_PROXY_TOKEN"
MIN_LENGTH = 16


def _checked(token: str, where: str) -> str:
    token = token.strip()
    if len(token) < MIN_LENGTH or any(c.isspace() for c in token):
        raise DrillsError(
            f"{where}: the proxy token needs at least {MIN_LENGTH} characters and no spaces"
        )
    return token


def read_token_file(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise DrillsError(f"{path}: cannot read the proxy token: {exc.strerror}") from exc
    with os.fdopen(fd, encoding="utf-8") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise DrillsError(f"{path}: the token file is open to other users (chmod 600 it)")
        return _checked(file.read(), str(path))


def server_token(token_file: Path | None) -> tuple[str, bool]:
    """The token `drills proxy` requires, and whether it was generated here (to be printed)."""
    if token_file is not None:
        return read_token_file(token_file), False
    if TOKEN_ENV in os.environ:
        return _checked(os.environ[TOKEN_ENV], TOKEN_ENV), False
    return secrets.token_urlsafe(32), True


def client_token(explicit: str | None = None) -> str | None:
    """The token drills sends: the scenario's `network.token`, else `DRILLS_PROXY_TOKEN`."""
    token = explicit if explicit is not None else os.environ.get(TOKEN_ENV)
    return token.strip() if token else None
