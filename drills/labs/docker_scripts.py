"""The shell scripts that prepare a `docker-postgres-pair` server before it starts PostgreSQL.

Nobody is trusted: the superuser has a password made for the run, which reaches each container
in the variable PASSWORD_ENV (visible to `docker inspect`, i.e. to whoever controls the engine,
who controls the containers anyway; never to other local users, never on a command line). The
script writes it to files readable by the container's `postgres` user alone (initdb's password
file, removed once read; the password file a standby streams with) and removes the variable
before it starts the server, so that PostgreSQL and what it runs do not inherit it."""

from __future__ import annotations

import shlex

from drills.labs.credentials import SUPERUSER

PASSWORD_ENV = "DRILLS_LAB_PASSWORD"
PGDATA = "/tmp/drills-pgdata"
PASSFILE = "/tmp/drills-pgpass"  # in the container: the standby's primary_conninfo names it
HBA = (
    "host all all all scram-sha-256",
    f"host replication {SUPERUSER} all scram-sha-256",
)


def _passfile() -> list[str]:
    """Write the container's password file (every host: the standby reaches A by name)."""
    return [
        "umask 077",
        f"printf '*:*:*:{SUPERUSER}:%s\\n' \"${PASSWORD_ENV}\" > {PASSFILE}",
        f"export PGPASSFILE={PASSFILE}",
    ]


def primary_script() -> list[str]:
    """initdb with the password (only once: a restarted container keeps its files)."""
    hba = "\\n".join(HBA)
    return [
        *_passfile(),
        f"if [ ! -s {PGDATA}/PG_VERSION ]; then",
        f"  printf '%s\\n' \"${PASSWORD_ENV}\" > /tmp/drills-initdb-pw",
        f"  initdb -D {PGDATA} -U {SUPERUSER} --auth=scram-sha-256 "
        "--pwfile=/tmp/drills-initdb-pw --no-locale -E UTF8 -N >/dev/null",
        "  rm -f /tmp/drills-initdb-pw",
        f"  printf '{hba}\\n' >> {PGDATA}/pg_hba.conf",
        "fi",
    ]


def standby_script(primary_host: str, primary_port: int = 5432) -> list[str]:
    """A base backup of the primary, streaming with the password file (pg_basebackup -R
    names it in primary_conninfo)."""
    return [
        *_passfile(),
        f"if [ ! -s {PGDATA}/PG_VERSION ]; then",
        "  tries=0",
        f"  until pg_basebackup -h {shlex.quote(primary_host)} -p {primary_port} "
        f"-U {SUPERUSER} -D {PGDATA} "
        "-R -X stream -c fast; do",
        f"    rm -rf {PGDATA}; tries=$((tries+1)); [ $tries -lt 150 ] || exit 1; sleep 0.2",
        "  done",
        "fi",
    ]


def server_script(prepare: list[str], settings: list[str]) -> str:
    """`prepare`, then PostgreSQL in place of the shell, without the password variable."""
    return "\n".join(
        [
            "set -e",
            *prepare,
            f"unset {PASSWORD_ENV}",
            f"exec postgres -D {PGDATA} {shlex.join(settings)}",
        ]
    )
