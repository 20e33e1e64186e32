"""The results store as runners use it, against a real PostgreSQL server the tests start: drills
logs in as role `drills` with a password read from a file (scram-sha-256 on loopback), each test
in a fresh database of that one server. Runners on different hosts are drills processes in UTS
namespaces of their own, each with its own host name and state directory."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from drills.metrics.exporter import Exporter, start_exporter
from drills.network.ports import free_port
from drills.store.runs import ExporterSource
from drills.store.settings import Store
from tests.conftest import REPO, drills_env
from tests.store_server import StoreServer, store_server

pytestmark = pytest.mark.postgres
RECORDS = REPO / "tests" / "data" / "records"
SCHEDULE = REPO / "scenarios" / "schedule.yaml"
UNSHARE = shutil.which("unshare")


@pytest.fixture(scope="module")
def store() -> Iterator[StoreServer]:
    with store_server() as made:
        yield made


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(256)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def needs_hosts() -> None:
    if os.geteuid() != 0 or UNSHARE is None:
        pytest.skip("runners with host names of their own need root and unshare (UTS namespace)")


DOWN_S = 0.5  # how long each drill holds its link down
TTL = 10  # seconds a lease outlives its holder's last renewal, in the lease test


def scenario(path: Path, name: str, upstream: int, writes: int, wait: str = "300ms") -> Path:
    """A drill that takes its proxy link to `upstream` down for DOWN_S: the link's upstream is
    the target it leases. Its writes go to the server on port `writes`, which nothing stops."""
    port = free_port()
    dsn = f"host=127.0.0.1 port={writes} user=postgres dbname=postgres"
    table = name.replace("-", "_")
    path.write_text(
        f"name: {name}\n"
        "network:\n  links:\n"
        f"    svc: {{client: clients, server: svc, listen: '127.0.0.1:{port}', "
        f"upstream: '127.0.0.1:{upstream}'}}\n"
        f"probes:\n  port: {{kind: tcp, host: 127.0.0.1, port: {port}, interval: 20ms}}\n"
        f"  writes: {{kind: postgres-write, dsn: '{dsn}', table: {table}, interval: 50ms}}\n"
        "service_probe: port\nwrite_probe: writes\n"
        f"steps:\n  - wait: {wait}\n  - link-down: svc\n  - wait: {DOWN_S}s\n"
        "  - heal: svc\n  - wait-until: port\n"
    )
    return path


def on_host(host: str | None, args: list[str]) -> list[str]:
    """`drills ARGS`, on a host named `host` (a UTS namespace of its own) when given."""
    drills = [sys.executable, "-m", "drills", *args]
    if host is None:
        return drills
    assert UNSHARE is not None
    return [
        UNSHARE,
        "--uts",
        "sh",
        "-c",
        'hostname "$1" && shift && exec "$@"',
        "sh",
        host,
        *drills,
    ]


class Runner:
    """A host running drills: its name, state directory and reports directory."""

    def __init__(self, name: str | None, base: Path, sandbox: Path, env: dict[str, str]) -> None:
        self.name = name
        self.state = base / f"state-{name}"
        self.reports = base / f"runs-{name}"
        self.env = drills_env(sandbox) | env | {"DRILLS_STATE_DIR": str(self.state)}

    def start(self, args: list[str]) -> subprocess.Popen[str]:
        if args[:1] == ["run"]:
            args = [*args, "--reports-dir", str(self.reports), "--no-report", "--no-live"]
        return subprocess.Popen(
            on_host(self.name, args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=REPO,
        )

    def run(self, args: list[str]) -> tuple[int, str, str]:
        proc = self.start(args)
        out, err = proc.communicate(timeout=120)
        return proc.returncode, out, err

    def record(self) -> Path:
        [found] = sorted(self.reports.glob("*.json"))[-1:]
        return found


def rows(store: StoreServer, url: str) -> list[tuple[object, ...]]:
    with store.admin(url.rsplit("/", 1)[1]) as conn:
        return conn.execute(
            "SELECT seq, runner, run_id, record_sha256 FROM drills_runs ORDER BY seq"
        ).fetchall()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_four_runners_at_once_write_one_chain(
    store: StoreServer, sandbox: Path, tmp_path: Path, listener: int
) -> None:
    needs_hosts()
    url = store.fresh()
    runners = [Runner(f"runner-{n}", tmp_path, sandbox, store.env(url)) for n in range(1, 5)]
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in runners]  # one target each
    pg = store.server.port
    procs = [
        r.start(["run", str(scenario(tmp_path / f"{r.name}.yaml", f"drill-{r.name}", port, pg))])
        for r, port in zip(runners, (s.getsockname()[1] for s in servers), strict=True)
    ]
    outcomes = [proc.communicate(timeout=120) for proc in procs]
    for server in servers:
        server.close()
    for proc, (out, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, out + err
    stored = rows(store, url)
    assert [row[0] for row in stored] == [1, 2, 3, 4]  # no gap, no duplicate
    assert sorted(str(row[1]) for row in stored) == [r.name for r in runners]
    display = url
    password = store.password_file.read_text().strip()
    for runner, (out, err) in zip(runners, outcomes, strict=True):
        record = json.loads(runner.record().read_text())
        assert record["host"]["hostname"] == runner.name
        assert record["store"] == display
        cut, heal = record["timeline"][1], record["timeline"][3]  # link-down ... heal
        outage = heal["end_s"] - cut["start_s"]  # the outage the drill made, by its step times
        assert outage >= DOWN_S
        # one 20 ms interval, and the lateness of four drills sharing two cores
        assert outage - 0.01 <= record["measurements"]["rto_s"] <= outage + 0.1
        assert record["measurements"]["lost_writes"] == 0  # their server was never touched
        [row] = [row for row in stored if row[2] == record["run_id"]]
        assert row[3] == sha256(runner.record())  # the file's very bytes
        assert f"store: #{row[0]} in {display}" in out
        assert password not in out + err + runner.record().read_text()
    status, out, err = runners[0].run(["verify"])
    assert status == 0, err
    assert "4 records checked: chain intact" in out


def test_a_second_host_is_refused_and_takes_over_once_the_killed_holders_lease_expires(
    store: StoreServer, sandbox: Path, tmp_path: Path, listener: int
) -> None:
    needs_hosts()
    url = store.fresh()
    config = tmp_path / "drills.yaml"
    config.write_text(f"store:\n  lease_ttl: {TTL}\n")  # renewed every third of it
    env = store.env(url) | {"DRILLS_CONFIG": str(config)}
    a, b = (Runner(name, tmp_path, sandbox, env) for name in ("host-a", "host-b"))
    pg = store.server.port
    holder = scenario(tmp_path / "holder.yaml", "lease-holder", listener, pg, "60s")
    taker = scenario(tmp_path / "taker.yaml", "lease-taker", listener, pg)
    proc = a.start(["run", str(holder)])
    try:
        lease = _lease(store, url, timeout=60)
        assert lease[:2] == ("host-a", proc.pid)
        status, _, err = b.run(["run", str(taker)])
        assert status == 2, err
        assert (
            f"upstream:127.0.0.1:{listener} is in use by another drill: scenario 'lease-holder', "
            f"pid {proc.pid} "
            "on host-a, since "
        ) in err
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        killed = time.time()
        status, _, err = b.run(["run", str(taker)])
        assert status == 2 and "is in use by another drill" in err, err
        expires = _lease(store, url, timeout=1)[2]  # still the dead holder's
        while time.time() < expires + 0.2:  # bounded by the lease's own expiry
            time.sleep(0.1)
        status, _, err = b.run(["run", str(taker)])
        assert status == 0, err  # taken over
        assert expires - killed <= TTL + 0.5  # the lease outlived its holder by at most its ttl
        with store.admin(url.rsplit("/", 1)[1]) as conn:
            assert conn.execute("SELECT count(*) FROM drills_leases").fetchone() == (0,)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        a.run(["recover"])  # the killed holder's journal


def test_drills_recover_releases_a_killed_holders_leases_at_once(
    store: StoreServer, sandbox: Path, tmp_path: Path, listener: int
) -> None:
    needs_hosts()
    url = store.fresh()
    a, b = (Runner(name, tmp_path, sandbox, store.env(url)) for name in ("host-a", "host-b"))
    pg = store.server.port
    holder = scenario(tmp_path / "holder.yaml", "lease-holder", listener, pg, "60s")
    proc = a.start(["run", str(holder)])
    try:
        _lease(store, url, timeout=60)
        proc.send_signal(signal.SIGKILL)  # its lease would run another minute (default ttl)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    status, out, err = a.run(["recover"])
    assert status == 0, out + err
    assert f"released 1 lease in {url}" in out
    status, _, err = b.run(["run", str(scenario(tmp_path / "t.yaml", "taker", listener, pg))])
    assert status == 0, err  # at once: not refused


def _lease(store: StoreServer, url: str, timeout: float) -> tuple[str, int, float]:
    deadline = time.monotonic() + timeout
    while True:
        with store.admin(url.rsplit("/", 1)[1]) as conn:
            try:
                found = conn.execute(
                    "SELECT host, pid, extract(epoch FROM expires_at)::float8 FROM drills_leases"
                    " WHERE key LIKE 'upstream:%%'"
                ).fetchone()
            except psycopg.errors.UndefinedTable:  # the holder has not created it yet
                found = None
        if found is not None:
            return str(found[0]), int(str(found[1])), float(str(found[2]))
        assert time.monotonic() < deadline, "the holder never took its lease"
        time.sleep(0.1)


def _pg_ctl(store: StoreServer, *args: str) -> None:
    server = store.server
    log = ["-l", str(server.root / "server.log")] if args[0] == "start" else []
    server.run([str(server.bin / "pg_ctl"), "-D", str(server.datadir), *log, "-w", *args], args[0])


def test_a_store_stopped_during_a_drill_loses_nothing(
    store: StoreServer, sandbox: Path, tmp_path: Path, listener: int
) -> None:
    with store_server() as own:  # its own server: this test stops it
        url = own.fresh()
        runner = Runner(None, tmp_path, sandbox, own.env(url))
        path = scenario(tmp_path / "spooled.yaml", "spooled", listener, store.server.port, "2s")
        proc = runner.start(["run", str(path)])
        _wait_for(proc, "step 1/5")
        _pg_ctl(own, "stop", "-m", "fast")  # the store goes away while the drill runs
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err  # the drill's verdict stands
        first = runner.record()
        spooled = runner.state / "spool" / first.stem
        assert f"store: record spooled to {spooled}: `drills store flush`" in out
        assert (spooled / first.name).read_bytes() == first.read_bytes()
        assert json.loads(first.read_text())["store"] == url
        _pg_ctl(own, "start")
        status, out, err = runner.run(["run", str(path)])  # the next drill uploads it first
        assert status == 0, out + err
        second = runner.record()
        assert f"store: #2 in {url} (1 spooled before uploaded first)" in out
        assert not spooled.exists()

        proc = runner.start(["run", str(path)])  # once more, and `drills store flush`
        _wait_for(proc, "step 1/5")
        _pg_ctl(own, "stop", "-m", "fast")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "record spooled to" in out, out + err
        third = runner.record()
        _pg_ctl(own, "start")
        status, out, err = runner.run(["store", "flush"])
        assert status == 0, err
        assert f"1 spooled records uploaded to {url}, 0 left" in out
        assert [row[3] for row in rows(own, url)] == [sha256(p) for p in (first, second, third)]
        status, out, err = runner.run(["verify"])
        assert status == 0 and "3 records checked: chain intact" in out, out + err
        _pg_ctl(own, "stop", "-m", "fast")  # a drill whose targets cannot be leased
        status, out, err = runner.run(["run", str(path)])
        assert status == 2 and "the drill's targets cannot be leased there" in err


def _wait_for(proc: subprocess.Popen[str], marker: str) -> None:
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if marker in line or not line:
            break
    assert any(marker in line for line in seen), "".join(seen)


def _files(runner: Runner) -> Callable[[list[str]], tuple[int, str, str]]:
    """`drills ARGS` on `runner`'s host, reading the records of RECORDS as files."""
    return lambda args: runner.run([*args, "--no-store", "--reports-dir", str(RECORDS)])


def test_report_and_due_from_the_store_equal_those_from_files(
    store: StoreServer, sandbox: Path, tmp_path: Path
) -> None:
    url = store.fresh()
    runner = Runner(None, tmp_path, sandbox, store.env(url))
    files = _files(runner)  # the same host, reading files with --no-store
    status, out, _ = runner.run(["store", "import", str(RECORDS)])
    assert status == 0 and f"{RECORDS}: 6 records added to {url}, 0 already there" in out
    status, out, _ = runner.run(["store", "import", str(RECORDS)])
    assert status == 0 and "0 records added" in out and "6 already there" in out
    assert len(rows(store, url)) == 6

    quarter = ["--quarter", "2026-Q4", "--schedule", "scenarios/schedule.yaml"]
    status, _, err = runner.run(["report", *quarter, "--out", str(tmp_path / "from-store")])
    assert status == 0, err
    status, _, err = files(["report", *quarter, "--out", str(tmp_path / "from-files")])
    assert status == 0, err
    made = [
        (tmp_path / where / "2026-Q4" / "report.md").read_text()
        for where in ("from-store", "from-files")
    ]
    assert _undated(made[0]) == _undated(made[1])
    due = ["due", "--json", "--now", "2026-11-30T00:00:00Z"]
    from_store = json.loads(runner.run(due)[1])
    from_files = json.loads(files(due)[1])
    assert _by_name(from_store) == _by_name(from_files)

    assert _metrics(start_exporter(RECORDS, SCHEDULE, key=None)) == _metrics(
        start_exporter(RECORDS, SCHEDULE, source=ExporterSource(_store(store, url), None))
    )
    run_id = "20261123T200200Z-simple-lost"
    shown = [runner.run(["show", run_id]), files(["show", run_id])]
    assert shown[0][0] == shown[1][0] == 1  # the verdict of that record: an objective missed
    assert shown[0][1].replace("store#3/", str(RECORDS) + "/") == shown[1][1]

    status, out, err = runner.run(["store", "export", str(tmp_path / "exported")])
    assert status == 0, err
    [exported] = (tmp_path / "exported").iterdir()
    for original in RECORDS.glob("2026*"):
        assert (exported / original.name).read_bytes() == original.read_bytes()
    status, out, err = runner.run(["verify", "--no-store", "--reports-dir", str(exported)])
    assert status == 0, out + err

    with store.admin(url.rsplit("/", 1)[1]) as conn:  # rewrite one record in the store
        conn.execute("UPDATE drills_runs SET record = record || '\\x20'::bytea WHERE seq = 3")
    status, out, err = runner.run(["verify"])
    assert status == 1 and "store #3 " in err and "record changed after it was stored" in err
    status, out, err = runner.run(["report", *quarter, "--out", str(tmp_path / "again")])
    assert status == 0 and "store#3/" in err and "left out, fails verification" in err


def _store(store: StoreServer, url: str) -> Store:
    return Store(url, store.password_file.read_text().strip())


def _metrics(exporter: Exporter) -> list[str]:
    """A scrape's samples, but those about the scrape itself."""
    try:
        with urllib.request.urlopen(exporter.url, timeout=30) as response:
            body = response.read().decode()
    finally:
        exporter.stop()
    return [line for line in body.splitlines() if "scrape_duration" not in line]


def _undated(report: str) -> str:
    return "\n".join(line for line in report.splitlines() if "generated" not in line.lower())


def _by_name(due: dict[str, object]) -> str:
    """`due --json` with each record named by its file name, wherever it is kept."""
    text = json.dumps(due, sort_keys=True)
    return text.replace(str(RECORDS) + "/", "").replace("store#", "#")
