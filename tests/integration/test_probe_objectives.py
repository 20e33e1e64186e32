"""Two judged probes with different verdicts: `db`, the service probe, and `shop` with objectives
of its own, each an HTTP server of the test's own that the drill's `exec` steps freeze
(SIGSTOP) and thaw for lengths the test chose; the truth is taken from those steps' times."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_drills

INTERVAL_S = 0.02
DB_DOWN_S = 0.5
SHOP_DOWN_S = 2.0

SCENARIO = """
version: 1
name: two-judged-probes
objectives: {{rto: 5s}}
probes:
  db: {{kind: http, url: "http://127.0.0.1:{db_port}/", interval: 20ms, timeout: 200ms}}
  shop:
    kind: http
    url: "http://127.0.0.1:{shop_port}/"
    interval: 20ms
    timeout: 200ms
    objectives: {{rto: 1s, availability: 99.99%}}
service_probe: db
steps:
  - wait: 1s
  - exec: {{command: "kill -STOP {db} {shop}", undo: "kill -CONT {db} {shop}", starts_rto: true}}
  - wait: {db_down}s
  - exec: {{command: "kill -CONT {db}"}}
  - wait: {shop_rest}s
  - exec: {{command: "kill -CONT {shop}"}}
  - wait-until: shop
  - wait: 1s
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[tuple[int, int]]]:
    """Two HTTP servers: (pid, port) each."""
    found, procs = [], []
    try:
        for _ in range(2):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(proc)
            found.append((proc.pid, port))
        for _, port in found:
            wait_for_port(port)
        yield found
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def wait_for_port(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            subprocess.run(["sleep", "0.05"], check=True)
    raise AssertionError(f"nothing listens on {port}")


def test_the_service_probe_and_another_judged_probe_get_their_own_verdicts(
    sandbox: Path, tmp_path: Path, servers: list[tuple[int, int]]
) -> None:
    (db, db_port), (shop, shop_port) = servers
    path = tmp_path / "two.yaml"
    path.write_text(
        SCENARIO.format(
            db=db,
            db_port=db_port,
            shop=shop,
            shop_port=shop_port,
            db_down=DB_DOWN_S,
            shop_rest=SHOP_DOWN_S - DB_DOWN_S,
        )
    )
    reports = tmp_path / "runs"
    dry = run_drills(["run", str(path), "--dry-run"], sandbox, reports)
    assert "objectives of probe shop: RTO <= 1s, availability >= 99.9900%" in dry.stdout

    run = run_drills(["run", str(path), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 1, run.stderr + run.stdout  # a missed objective fails the drill
    record = run.record()
    freeze, db_back, shop_back = [s for s in record["timeline"] if s["kind"] == "exec"]
    tolerance = 2 * INTERVAL_S + 0.05
    verdicts = record["verdicts"]
    # RTO: from the start of the freeze to each server's recovery, which follows its thaw.
    db_truth = db_back["end_s"] - freeze["start_s"]
    assert abs(db_truth - DB_DOWN_S) < 0.2
    assert abs(record["measurements"]["rto_s"] - db_truth) <= tolerance
    assert verdicts["rto"]["verdict"] == "met"
    shop_truth = shop_back["end_s"] - freeze["start_s"]
    assert abs(shop_truth - SHOP_DOWN_S) < 0.2
    shop_rto = verdicts["rto:shop"]
    assert abs(shop_rto["measured"] - shop_truth) <= tolerance, (shop_rto, shop_truth)
    assert (shop_rto["objective"], shop_rto["verdict"]) == (1, "missed")
    shop_down = record["probes"]["shop"]["downtime_s"]
    assert abs(shop_down - (shop_back["end_s"] - freeze["end_s"])) <= tolerance
    assert verdicts["availability:shop"]["verdict"] == "met"  # 2 s of a quarter's 795 s budget
    assert "| RTO of shop" in run.stdout and "| missed" in run.stdout
    assert record["check"]["probe_objectives"] == {"shop": {"rto_s": 1, "availability": 0.9999}}
