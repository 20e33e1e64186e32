"""Where the results store is and how drills logs in to it.

The store is `--store URL`, else `$DRILLS_STORE`, else `store.url` in drills.yaml; none of them
set: no store, records are files only. The password comes from `$DRILLS_STORE_PASSWORD_FILE`,
else `store.password_file`, else libpq's own places (`$PGPASSWORD`, ~/.pgpass). A password
inside a `--store` URL is refused: any user of the machine can read a command line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from drills.errors import DrillsError

ENV = "DRILLS_STORE"
PASSWORD_FILE_ENV = "DRILLS_STORE_PASSWORD_FILE"


class StoreUnreachable(DrillsError):
    """The store could not be reached or did not answer."""


# A store that stops answering must not hold a drill: TCP gives up on a silent server after
# 10 s (not the kernel's 15 min), a statement after 20 s; times are read in UTC.
SESSION = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "options": "-c statement_timeout=20000 -c TimeZone=UTC",
}


@dataclass(frozen=True)
class Store:
    url: str
    password: str | None = field(default=None, repr=False)
    lease_ttl: float = 60.0

    @property
    def display(self) -> str:
        """The store's address without its password: what outputs and records say."""
        parts = conninfo_to_dict(self.url)
        user = f"{parts['user']}@" if parts.get("user") else ""
        host = str(parts.get("host") or "localhost")
        port = f":{parts['port']}" if parts.get("port") else ""
        return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"

    def connect(self, timeout: float = 10.0) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(
                self.url,
                password=self.password,
                connect_timeout=max(1, round(timeout)),
                application_name="drills",
                autocommit=True,
                **SESSION,  # type: ignore[arg-type]
            )
        except psycopg.Error as exc:
            raise unreachable(self, exc) from None


def unreachable(store: Store, exc: BaseException) -> StoreUnreachable:
    """One line for a store that failed; a password is never in it, even one libpq echoes."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    secrets = [store.password, str(_parsed(store.url, "").get("password") or "")]
    for secret in filter(None, secrets):
        first = first.replace(secret, "***")
    return StoreUnreachable(f"store {store.display}: {first}")


@contextmanager
def answering(store: Store) -> Iterator[None]:
    """A database error inside becomes one line naming the store (exit status 2)."""
    try:
        yield
    except psycopg.Error as exc:
        raise unreachable(store, exc) from None


def _parsed(url: str, where: str) -> dict[str, object]:
    try:
        return dict(conninfo_to_dict(url))
    except psycopg.ProgrammingError:  # its text may quote the URL, password and all
        raise DrillsError(
            f"{where}: not a PostgreSQL connection URL (postgresql://USER@HOST:PORT/DB, or "
            "key=value pairs)"
        ) from None


def _password(file: Path | None, where: str) -> str | None:
    if file is None:
        return None
    try:
        if file.stat().st_mode & 0o077:
            raise DrillsError(
                f"{where} {file}: the store's password file is open to other users: "
                f"chmod 600 {file}"
            )
        return file.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise DrillsError(f"{where} {file}: cannot read the store's password: {why}") from None


def find_store(option: str | None, config_file: Path | None) -> Store | None:
    """The store in effect (`--store` given as `option`), or None when there is none."""
    from drills.config import load_config

    config = load_config(config_file).store
    if option is not None:
        if _parsed(option, "--store").get("password"):
            raise DrillsError(
                "--store: a password on the command line is visible to every user of this "
                f"machine: put it in a file named by ${PASSWORD_FILE_ENV} or "
                "store.password_file, or in $PGPASSWORD"
            )
        url = option
    elif os.environ.get(ENV):
        url = os.environ[ENV]
        _parsed(url, f"${ENV}")
    elif config.url:
        url = config.url
        _parsed(url, f"{config_file}: store.url")
    else:
        return None
    if os.environ.get(PASSWORD_FILE_ENV):
        password = _password(Path(os.environ[PASSWORD_FILE_ENV]), f"${PASSWORD_FILE_ENV}")
    else:
        file = config.password_file
        if file is not None and config_file is not None and not file.is_absolute():
            file = config_file.parent / file  # as signing_key_file: beside drills.yaml
        password = _password(file, f"{config_file}: store.password_file")
    return Store(url, password, config.lease_ttl)
