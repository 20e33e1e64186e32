"""The LOCAL_SERVER ability: a lab's PostgreSQL server has it, nothing else does; what a
refused restart said."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.containers.target import container_target_class
from drills.incidents.server import LOCAL_SERVER, restart_after_damage, why_down
from drills.labs.dual_active import BalancerNode, ServiceNode
from drills.labs.lab_process import PostgresNode
from drills.patroni.lab_nodes import EtcdNode, PatroniMember
from drills.targets import process_target_class
from tests.unit.drills.incidents.fakes import server


def test_a_lab_postgres_server_has_it() -> None:
    assert LOCAL_SERVER.provided_by(PostgresNode)


@pytest.mark.parametrize(
    "cls",
    [
        process_target_class("pg_ctl start", "host=127.0.0.1"),
        process_target_class(None, None),
        container_target_class("host=127.0.0.1"),
        ServiceNode,
        BalancerNode,
        PatroniMember,
        EtcdNode,
    ],
    ids=lambda cls: cls.__name__,
)
def test_nothing_else_has_it(cls: type) -> None:
    assert not LOCAL_SERVER.provided_by(cls)


def test_an_instance_is_checked_member_by_member(tmp_path: Path) -> None:
    fake = server(tmp_path)
    assert LOCAL_SERVER.of(fake) is fake
    assert LOCAL_SERVER.of(object()) is None


SHUTDOWN = "2026-12-02 16:04:38.031 UTC [12921] LOG:  database system is shut down"


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        (  # pg_hba.conf garbled: the start's own FATAL, not the stop's
            [
                "2026-12-02 16:04:37.900 UTC [12000] FATAL:  terminating walreceiver process",
                SHUTDOWN,
                "2026-12-02 16:04:38.001 UTC [12921] LOG:  starting PostgreSQL 15.18",
                "2026-12-02 16:04:38.030 UTC [12921] LOG:  invalid authentication method",
                "2026-12-02 16:04:38.030 UTC [12921] FATAL:  could not load pg_hba.conf",
                SHUTDOWN,
            ],
            "FATAL:  could not load pg_hba.conf",
        ),
        (  # postgresql.conf deleted: said before logging starts, after the stop's lines
            [
                "2026-12-02 16:04:37.900 UTC [12000] FATAL:  terminating walreceiver process",
                SHUTDOWN,
                'postgres: could not access the server configuration file "/x/postgresql.conf"',
            ],
            'postgres: could not access the server configuration file "/x/postgresql.conf"',
        ),
        (  # killed, then refused: the last FATAL wins over earlier connection refusals
            [
                "2026-12-02 16:04:55.055 UTC [13256] FATAL:  the database system is starting up",
                "2026-12-02 16:04:56.268 UTC [13293] FATAL:  database files are incompatible",
                "2026-12-02 16:04:56.268 UTC [13293] HINT:  It looks like you need to initdb.",
                SHUTDOWN,
            ],
            "FATAL:  database files are incompatible",
        ),
        ([], ""),
    ],
)
def test_why_a_restart_was_refused(lines: list[str], said: str) -> None:
    assert why_down(lines) == said


def test_a_refused_restart_is_an_outcome_not_an_error(tmp_path: Path) -> None:
    fake = server(tmp_path)
    fake.refuses = "2026-12-02 16:04:38.030 UTC [1] FATAL:  could not load pg_hba.conf"
    assert restart_after_damage(fake) == (False, "FATAL:  could not load pg_hba.conf")
    assert fake.calls == ["restart", "start"]
    fake.refuses, fake.calls = "", []
    assert restart_after_damage(fake, immediate=True) == (True, "")
    assert fake.calls == ["kill_all", "start"]
