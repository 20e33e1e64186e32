"""pg_amcheck's report in one line (the outputs are pg_amcheck 15's, seen here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.backup.amcheck import amcheck, summarize

INDEX_DAMAGE = """btree index "postgres.public.c_pkey":
    ERROR:  line pointer points past end of tuple space in index "c_pkey"
    DETAIL:  Index tid=(1,20) lp_off=11742, lp_len=30687 lp_flags=1.
NOTICE:  extension "amcheck" already exists, skipping
"""
HEAP_DAMAGE = """heap table "postgres.public.t", block 0, offset 3:
    xmin 4294967295 equals or exceeds next valid transaction ID 0:749
heap table "postgres.public.t", block 0, offset 4:
    xmin 4294967295 equals or exceeds next valid transaction ID 0:749
btree index "postgres.public.t_pkey":
    ERROR:  item order invariant violated for index "t_pkey"
"""
REFUSED = (
    'pg_amcheck: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?\n"
)


def test_a_clean_check_is_ok_whatever_notices_it_printed() -> None:
    assert summarize(0, 'NOTICE:  extension "amcheck" already exists, skipping\n') == "ok"


def test_damage_names_the_relation_and_the_first_message() -> None:
    assert summarize(2, INDEX_DAMAGE) == (
        "pg_amcheck: corruption in 1 relation (btree index postgres.public.c_pkey): "
        'line pointer points past end of tuple space in index "c_pkey"'
    )


def test_several_damaged_relations_are_counted_once_each() -> None:
    assert summarize(2, HEAP_DAMAGE) == (
        "pg_amcheck: corruption in 2 relations (heap table postgres.public.t, btree index "
        "postgres.public.t_pkey): xmin 4294967295 equals or exceeds next valid transaction ID 0:749"
    )


def test_many_relations_are_cut_short() -> None:
    output = "".join(f'heap table "postgres.public.t{i}":\n    bad\n' for i in range(5))
    summary = summarize(2, output)
    assert "postgres.public.t2 and 2 more): bad" in summary
    assert "corruption in 5 relations" in summary


def test_a_check_that_could_not_run_says_why() -> None:
    assert summarize(1, REFUSED) == (
        'pg_amcheck failed (1): pg_amcheck: error: connection to server at "127.0.0.1", '
        "port 1 failed: Connection refused"
    )
    assert summarize(1, "") == "pg_amcheck failed (1): no output"


def test_the_command_checks_the_postgres_database_and_installs_amcheck() -> None:
    seen: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str]:
        seen.append(argv)
        return 0, ""

    assert amcheck(Path("/pg/bin"), "127.0.0.1", 5432, run) == "ok"
    assert seen == [
        [
            "/pg/bin/pg_amcheck",
            *("-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "--no-password"),
            "--install-missing",
            "postgres",
        ]
    ]


def test_a_missing_program_is_a_line_not_an_exception(tmp_path: Path) -> None:
    result = amcheck(tmp_path, "127.0.0.1", 5432)
    assert result.startswith("pg_amcheck could not run: [Errno 2]")


@pytest.mark.parametrize("code", [1, 2])
def test_a_failure_is_never_ok(code: int) -> None:
    assert summarize(code, "") != "ok"


def test_pg_amcheck_gets_the_password_file_and_no_secret_of_the_harness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRILLS_TEST_SECRET", "s3cr3t")
    seen: list[dict[str, str] | None] = []

    def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
        seen.append(env)
        return 0, ""

    monkeypatch.setattr("drills.backup.amcheck.run_captured", run)
    assert amcheck(Path("/pg/bin"), "127.0.0.1", 5432, passfile=Path("/lab/pgpass")) == "ok"
    env = seen[0]
    assert env is not None and env["PGPASSFILE"] == "/lab/pgpass"
    assert "DRILLS_TEST_SECRET" not in env
