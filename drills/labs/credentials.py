"""Credentials made for one lab, and the environment its programs start with.

A lab's databases let nobody in on trust: the superuser has a password made for the run
(scram-sha-256), kept only in files readable by their owner. The harness's clients name the
password file (`passfile=` in a DSN, PGPASSFILE in a child's environment); the password itself
is never on a command line, in a DSN, or in a record. Programs the lab starts get only the
environment they need, not the harness's (which may hold secrets)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
# Kept from the harness's environment for every child: where programs are, language and time.
KEPT_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def password() -> str:
    """A new password: 144 random bits, no ':' or '\\' (safe in a pgpass line as it is)."""
    return secrets.token_urlsafe(18)


def write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Create `path` readable by its owner only, before anything is written to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        if owner is not None:
            os.fchown(fd, *owner)  # on the descriptor: the name may be swapped meanwhile
        out.write(text)


def pgpass(secret: str, user: str = SUPERUSER, host: str = "127.0.0.1") -> str:
    """A password-file line for `user` at `host`, any port and database (`:` and `\\` in the
    host, an IPv6 address's, escaped as libpq reads them)."""
    escaped = host.replace("\\", "\\\\").replace(":", "\\:")
    return f"{escaped}:*:*:{user}:{secret}\n"


def passfile_param(passfile: Path) -> str:
    """`passfile=...` for a DSN, quoted as libpq reads it when the path needs it."""
    text = str(passfile)
    if text and not any(c in text for c in " '\\\t\n"):
        return f"passfile={text}"
    return "passfile='" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dsn(port: int, passfile: Path, host: str = "127.0.0.1") -> str:
    """A superuser DSN that takes its password from `passfile` (so it carries none)."""
    return f"host={host} port={port} user={SUPERUSER} dbname=postgres {passfile_param(passfile)}"


def passfile_of(conninfo: str) -> Path | None:
    """The password file a DSN names, for a client program started with it (PGPASSFILE)."""
    named = psycopg.conninfo.conninfo_to_dict(conninfo).get("passfile")
    return Path(str(named)) if named else None


def child_env(passfile: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a program a lab starts: PATH, LANG, LC_*, TZ from the harness's,
    PGPASSFILE when it connects to a lab database, and `extra`; nothing else."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in KEPT_VARIABLES or key.startswith("LC_")
    }
    env.setdefault("PATH", DEFAULT_PATH)
    if passfile is not None:
        env["PGPASSFILE"] = str(passfile)
    return env | extra
