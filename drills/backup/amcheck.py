"""Check a (restored) database for corruption with `pg_amcheck`, in one line: "ok" or what
is wrong.

pg_amcheck 15 checks every table's heap pages and every B-tree index of the database;
`--install-missing` creates the `amcheck` extension it needs. It exits 0 when it found nothing,
2 when it found corruption, 1 when it could not check. Its report names each damaged relation
on a line of its own, followed by indented messages:

    btree index "postgres.public.c_pkey":
        ERROR:  line pointer points past end of tuple space in index "c_pkey"
        DETAIL:  Index tid=(1,20) lp_off=11742, lp_len=30687 lp_flags=1.
    heap table "postgres.public.t", block 0, offset 3:
        xmin 4294967295 equals or exceeds next valid transaction ID 0:749
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path

from drills.labs.credentials import child_env

# Runs a program; returns its exit status and its output (stdout and stderr together).
RunOutput = Callable[[list[str]], tuple[int, str]]

RELATION_LINE = re.compile(r'^(?P<kind>[a-z]+ [a-z]+) "(?P<name>[^"]+)"(?:, .*)?:$')
NOISE = re.compile(r"^(NOTICE|DETAIL|HINT):")
MAX_SUMMARY = 300
TIMEOUT_S = 3600


def run_captured(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `argv` as this process's user (pg_amcheck is a client: it needs no server user),
    with `env` as its whole environment."""
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=TIMEOUT_S,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def amcheck_argv(bin_dir: Path, host: str, port: int, install: bool = True) -> list[str]:
    """`install`: create the extension if missing (a standby cannot: its primary must)."""
    return [
        str(bin_dir / "pg_amcheck"),
        *("-h", host, "-p", str(port), "-U", "postgres", "--no-password"),
        *(["--install-missing"] if install else []),
        "postgres",
    ]


def summarize(returncode: int, output: str) -> str:
    """One line: "ok", or the damaged relations and the first message about them, or why
    pg_amcheck could not check."""
    if returncode == 0:
        return "ok"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    relations = [m for line in lines if (m := RELATION_LINE.match(line))]
    messages = [line for line in lines if not RELATION_LINE.match(line) and not NOISE.match(line)]
    first = messages[0].removeprefix("ERROR:").strip() if messages else ""
    if relations:
        names = list(dict.fromkeys(f"{m['kind']} {m['name']}" for m in relations))
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        count = f"{len(names)} relation{'s' if len(names) > 1 else ''}"
        text = f"pg_amcheck: corruption in {count} ({shown}): {first}"
    else:
        text = f"pg_amcheck failed ({returncode}): {first or 'no output'}"
    return text[:MAX_SUMMARY]


def amcheck(
    bin_dir: Path,
    host: str,
    port: int,
    run_output: RunOutput | None = None,
    install: bool = True,
    passfile: Path | None = None,
) -> str:
    """Check the `postgres` database at host:port (as user postgres); "ok" or one line.
    pg_amcheck gets the password file `passfile` (PGPASSFILE) and no other secret: only the
    variables any program needs of the harness's environment."""
    run = run_output or partial(run_captured, env=child_env(passfile))
    try:
        returncode, output = run(amcheck_argv(bin_dir, host, port, install))
    except (OSError, subprocess.SubprocessError) as exc:
        return f"pg_amcheck could not run: {exc}"[:MAX_SUMMARY]
    return summarize(returncode, output)
