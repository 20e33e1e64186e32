"""`drills validate` on invalid scenarios: exit 2, one line `FILE:LINE: KEY: message`, and
nothing started; every shipped scenario validates.

Each file in tests/data/invalid has exactly one problem, named in a comment in the file (except
in empty.yaml).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from drills.errors import ScenarioError
from drills.scenario import load_scenario
from tests.paths import REPO

ROOT = REPO
INVALID = Path("tests/data/invalid")  # relative to ROOT, as a user would type it
SHIPPED = sorted(p.relative_to(ROOT) for p in (ROOT / "scenarios").glob("*.yaml"))
UNSET = "DRILLS_SURELY_UNSET_VAR"


@dataclass(frozen=True)
class Expect:
    line: int
    key: str  # key path of the problem; "" when it is about the whole file
    message: str  # a substring of the message


CASES: dict[str, Expect] = {
    "restore-unknown-before.yaml": Expect(
        12, "steps[1].restore", "no earlier step named 'drop' (named steps before it: none)"
    ),
    "restore-before-and-time.yaml": Expect(13, "steps[2].restore", "give `before` or `time`"),
    "restore-time-without-zone.yaml": Expect(12, "steps[1].restore", "has no time zone"),
    "restore-without-backup.yaml": Expect(
        12, "steps[1].restore", "restore needs a lab with a `backup:` setting (lab.backup)"
    ),
    "backup-size-not-a-size.yaml": Expect(4, "lab.backup.size", "'2 gigs': unknown unit 'gigs'"),
    "step-name-twice.yaml": Expect(13, "steps[2].wait.name", "already named 'pause'"),
    "lab-site-unknown-engine.yaml": Expect(
        11, "lab.sites.b.engine", "no engine named 'dc3' (engines: dc1, dc2)"
    ),
    "lab-sites-on-loopback.yaml": Expect(
        10, "lab.sites.a", "site a is reached at 127.0.0.1, a loopback: with the sites on two"
    ),
    "yaml-syntax.yaml": Expect(3, "", "invalid YAML: mapping values are not allowed here"),
    "top-level-list.yaml": Expect(1, "", "a scenario is a mapping of keys; got list"),
    "empty.yaml": Expect(1, "", "a scenario is a mapping of keys; got an empty file"),
    "unknown-top-key.yaml": Expect(39, "timeout", "unknown key 'timeout' (expected one of:"),
    "unknown-lab-key.yaml": Expect(15, "lab.synchronus", "unknown key 'synchronus'"),
    "unknown-probe-key.yaml": Expect(25, "probes.reads.intervall", "unknown key 'intervall'"),
    "unknown-objectives-key.yaml": Expect(11, "objectives.mttr", "unknown key 'mttr'"),
    "unknown-target-key.yaml": Expect(19, "targets.site-b.pidfile", "unknown key 'pidfile'"),
    "duplicate-key.yaml": Expect(37, "probes.site-a-port.interval", "duplicate key"),
    "duration-bare-number.yaml": Expect(9, "objectives.rto", "30 is not a duration"),
    "probe-objectives-on-service-probe.yaml": Expect(
        9,
        "probes.db.objectives",
        "'db' is the service_probe, judged by the scenario's objectives: set its RTO and "
        "availability there",
    ),
    "host-without-pid-file.yaml": Expect(
        5, "targets.db", "names its process there: `pid_file: PATH` or `unit: NAME`"
    ),
    "unit-with-start.yaml": Expect(5, "targets.web", "a unit is started and stopped by systemd"),
    "unit-not-a-service.yaml": Expect(
        7, "targets.web.unit", "'--now' is not a systemd service name"
    ),
    "probe-objectives-empty.yaml": Expect(
        11, "probes.shop.objectives", "give rto, availability or both"
    ),
    "duration-unknown-unit.yaml": Expect(44, "steps[2].wait", "'5x' is not a duration"),
    "availability-over-100.yaml": Expect(11, "objectives.availability", "'101%' is out of range"),
    "availability-not-a-number.yaml": Expect(11, "objectives.availability", "'abc' is not a ratio"),
    "missing-name.yaml": Expect(2, "name", "missing (required)"),
    "missing-probes.yaml": Expect(2, "probes", "missing (required)"),
    "missing-steps.yaml": Expect(2, "steps", "missing (required)"),
    "missing-service-probe.yaml": Expect(2, "service_probe", "missing (required)"),
    "missing-probe-dsn.yaml": Expect(22, "probes.reads.dsn", "missing (required)"),
    "missing-probe-kind.yaml": Expect(32, "probes.site-a-port.kind", "missing (required)"),
    "unknown-probe-kind.yaml": Expect(23, "probes.reads.kind", "unknown kind 'postgres-reed'"),
    "unknown-step-kind.yaml": Expect(
        43, "steps[1]", "unknown step 'crash' (steps: backup, bandwidth, blackhole,"
    ),
    "unknown-lab-kind.yaml": Expect(5, "lab.kind", "unknown kind 'mysql-pair'"),
    "step-two-keys.yaml": Expect(45, "steps[3]", "a step is one key"),
    "step-missing-target.yaml": Expect(45, "steps[3].promote", "no target named 'site-c'"),
    "wait-until-missing-probe.yaml": Expect(46, "steps[4].wait-until", "no probe named 'read'"),
    "service-probe-missing.yaml": Expect(38, "service_probe", "no probe named 'read'"),
    "write-probe-not-writing.yaml": Expect(39, "write_probe", "probe 'site-a-port' does not write"),
    "target-no-such-node.yaml": Expect(19, "targets.site-b.lab", "no node 'c'"),
    "target-neither-lab-nor-pid-file.yaml": Expect(
        19,
        "targets.site-b",
        "a target is one of: `lab: NODE`, `pid_file: PATH`, `unit: NAME` (with `host`), `cont",
    ),
    "target-container-and-pid-file.yaml": Expect(5, "targets.db", "a target is one of:"),
    "dual-active-without-proxy.yaml": Expect(6, "lab.proxy", "proxy links: keep it true"),
    "rejoin-itself.yaml": Expect(13, "steps[1].rejoin", "cannot rejoin as a standby of itself"),
    "http-write-not-a-url.yaml": Expect(6, "probes.orders.url", "'orders' is not an http://"),
    "container-step-on-process.yaml": Expect(
        15, "steps[1].stop", "cannot be used with stop: it cannot be stopped and started"
    ),
    "partition-two-forms.yaml": Expect(12, "steps[1].partition", "give one of: sites"),
    "partition-bad-address.yaml": Expect(
        11, "steps[1].partition", "'10.1.2.300' is not an IP address or CIDR"
    ),
    "lab-target-without-lab.yaml": Expect(5, "targets.db.lab", "the scenario has no lab"),
    "unknown-lab-variable.yaml": Expect(24, "probes.reads.dsn", "unknown lab variable 'nope'"),
    "unset-env-variable.yaml": Expect(
        34, "probes.site-a-port.host", f"environment variable {UNSET!r} is not set"
    ),
    "unknown-reference.yaml": Expect(34, "probes.site-a-port.host", "unknown reference ${a.host}"),
    "bad-signal.yaml": Expect(43, "steps[1].kill.signal", "unknown signal 'SIGKILLL'"),
    "restart-without-start.yaml": Expect(15, "steps[1].restart", "cannot be used with restart"),
    "promote-without-dsn.yaml": Expect(15, "steps[1].promote", "cannot be used with promote"),
    "promote-dual-active-lb.yaml": Expect(
        13,
        "steps[2].promote",
        "target 'lb' cannot be used with promote: it cannot be promoted"
        " (lb is HAProxy, in front of both services; nodes that can: a, b)",
    ),
    "promote-docker-extra-container.yaml": Expect(
        15, "steps[1].promote", "target 'cache' cannot be used with promote: it cannot be promoted"
    ),
    "rejoin-a-service.yaml": Expect(
        13, "steps[1].rejoin", "'a-service' cannot be used with rejoin: it cannot rejoin"
    ),
    "site-down-without-site-nodes.yaml": Expect(
        10, "steps[1].site-down", "site 'a' has no nodes to act on"
    ),
    "bad-name-uppercase.yaml": Expect(3, "name", "'DB-Failover' is not a valid name"),
    "bad-name-space.yaml": Expect(3, "name", "is not a valid name"),
    "version-2.yaml": Expect(2, "version", "unsupported version 2"),
    "yaml-unclosed-flow-mapping.yaml": Expect(18, "", "flow mapping that starts here"),
    "top-level-list-after-comment.yaml": Expect(2, "", "a scenario is a mapping of keys; got list"),
    "interval-too-short.yaml": Expect(
        36, "probes.site-a-port.interval", "interval must be at least 10ms"
    ),
    "unknown-lab-kind-with-variables.yaml": Expect(14, "lab.kind", "unknown kind 'mysql-pair'"),
    "lab-target-without-lab-killed.yaml": Expect(5, "targets.db.lab", "the scenario has no lab"),
    "lab-setting-not-scalar.yaml": Expect(
        17, "lab.settings.shared_preload_libraries", "string, number or boolean"
    ),
    "step-kind-conflict.yaml": Expect(43, "steps[1]", "a step's kind is its key (kill)"),
    "unterminated-reference.yaml": Expect(24, "probes.reads.dsn", "unterminated reference"),
    "stable-zero.yaml": Expect(40, "stable", "greater than or equal to 1"),
    "tcp-port-out-of-range.yaml": Expect(
        35, "probes.site-a-port.port", "less than or equal to 65535"
    ),
    "patroni-promote-member.yaml": Expect(
        13,
        "steps[1].promote",
        "target 'b1' cannot be used with promote: it cannot be promoted (b1 is a Patroni member"
        " at site b: Patroni decides which member is primary; use switchover or failover",
    ),
    "patroni-promote-leader.yaml": Expect(
        13, "steps[1].promote", "Patroni decides which member is primary; use switchover"
    ),
    "patroni-ttl-not-above-loop-wait.yaml": Expect(
        7, "lab.ttl", "ttl (10) must be longer than loop_wait (10)"
    ),
    "patroni-unknown-key.yaml": Expect(6, "lab.tll", "unknown key 'tll'"),
    "role-target-without-roles.yaml": Expect(
        6, "targets.leader.lab", "no node 'leader' in a postgres-pair lab (nodes: a, b)"
    ),
    "corrupt-not-a-lab-node.yaml": Expect(
        13, "steps[1].corrupt", "target 'mine' cannot be used with corrupt: it is not a PostgreSQL"
    ),
    "corrupt-poisoned-without-backup.yaml": Expect(
        13, "steps[1].corrupt.archive", "a poisoned archive needs the lab's backups"
    ),
    "corrupt-unknown-what.yaml": Expect(
        13, "steps[1].corrupt.what", "what is `data-directory` or `{relation: NAME}`"
    ),
    "sql-without-server.yaml": Expect(13, "steps[1].sql", "give exactly one of dsn"),
    "delete-config-unknown-file.yaml": Expect(
        13, "steps[1].delete-config.file", "'postgresql.conf' or 'pg_hba.conf'"
    ),
}


@dataclass(frozen=True)
class Validation:
    returncode: int
    stdout: str
    stderr: str
    tmpdir: Path


def _validate(path: Path, tmpdir: Path) -> Validation:
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    env["TMPDIR"] = str(tmpdir)
    result = subprocess.run(
        [sys.executable, "-m", "drills", "validate", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Validation(result.returncode, result.stdout, result.stderr, tmpdir)


@pytest.fixture(scope="module")
def validations(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Validation]:
    """`drills validate FILE` once per file, several at a time (each is a Python start-up)."""
    files = sorted(p.relative_to(ROOT) for p in (ROOT / INVALID).glob("*.yaml")) + SHIPPED
    tmpdirs = {f: tmp_path_factory.mktemp(f.stem) for f in files}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return dict(zip(files, pool.map(lambda f: _validate(f, tmpdirs[f]), files), strict=True))


def _params() -> list[object]:
    return [pytest.param(name, e, id=name) for name, e in CASES.items()]


@pytest.mark.parametrize(("name", "expect"), _params())
def test_invalid_scenario_is_one_located_problem(
    name: str, expect: Expect, validations: dict[Path, Validation]
) -> None:
    path = INVALID / name
    run = validations[path]
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == ""
    assert run.stderr.endswith("\n") and run.stderr.count("\n") == 1, run.stderr
    line = run.stderr.rstrip("\n")
    where = f"{path}:{expect.line}: "
    assert line.startswith(where), line
    rest = line.removeprefix(where)
    if expect.key:
        assert rest.startswith(f"{expect.key}: "), line
    assert expect.message in rest, line
    assert list(run.tmpdir.iterdir()) == [], "validating created files in TMPDIR"


def test_every_invalid_file_has_an_expectation() -> None:
    on_disk = {p.name for p in (ROOT / INVALID).glob("*.yaml")}
    assert on_disk == set(CASES)


@pytest.mark.parametrize("path", SHIPPED, ids=str)
def test_shipped_scenario_validates(path: Path, validations: dict[Path, Validation]) -> None:
    run = validations[path]
    assert run.returncode == 0, run.stderr
    kind = " (schedule)" if path.name == "schedule.yaml" else ""
    assert run.stdout == f"{path}: ok{kind}\n"
    assert run.stderr == ""
    assert list(run.tmpdir.iterdir()) == [], "validating created files in TMPDIR"


def test_there_are_shipped_scenarios() -> None:
    assert SHIPPED


def test_loading_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """No process, signal, temporary file or connection while a scenario is loaded."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"loading a scenario must not start anything: {args!r}")

    for owner, name in [
        (subprocess, "Popen"),
        (os, "fork"),
        (os, "posix_spawn"),
        (os, "kill"),
        (tempfile, "mkdtemp"),
        (tempfile, "mkstemp"),
        (socket, "create_connection"),
        (psycopg, "connect"),
    ]:
        monkeypatch.setattr(owner, name, forbidden)
    monkeypatch.delenv(UNSET, raising=False)
    files = sorted((ROOT / INVALID).glob("*.yaml")) + [ROOT / p for p in SHIPPED]
    for path in files:
        with contextlib.suppress(ScenarioError):
            load_scenario(path)
