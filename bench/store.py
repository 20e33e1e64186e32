"""The results store's speed: 10,000 signed records from 4 runners over 8 quarters in a
PostgreSQL store this bench starts, then the commands users run against it, timed as wholes
(Python's start included): a quarterly report, `drills due`, `drills verify --store`, the
exporter's start and its scrapes; and the insert of one record with a 3,000-sample history.
Writes its section of docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.sections import replace_section
from drills.network.ports import free_port
from drills.quarters import Quarter
from drills.records.chain import self_digest
from drills.records.files import record_text
from drills.records.signing import SigningKey
from drills.store.chain import insert_run, sha256
from drills.store.schema import open_store
from drills.store.settings import Store
from drills.store.upload import send
from tests.store_server import StoreServer, store_server

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "data" / "records"
RECORDS = 10_000
RUNNERS = ("dc1-runner", "dc2-runner", "ci", "laptop")
QUARTERS = 8
KEY = SigningKey(b"bench-store-signing-key-0123456789abcdef", "bench")
TARGETS = {"report_s": 10.0, "scrape_s": 1.0, "insert_ms": 200.0}


def _templates() -> list[tuple[dict[str, Any], bytes]]:
    found = []
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text())
        found.append((data, (FIXTURES / data["history"]).read_bytes()))
    return found


def _record(template: dict[str, Any], history: bytes, n: int, when: datetime) -> bytes:
    data = json.loads(json.dumps(template))
    run_id = f"{when:%Y%m%dT%H%M%S}Z-{n:05d}-{data['scenario']['name']}"
    data["run_id"], data["history"] = run_id, f"{run_id}.history.jsonl"
    data["started_at"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    data["finished_at"] = (when + timedelta(seconds=30)).isoformat(timespec="milliseconds")
    data["host"]["hostname"] = RUNNERS[n % len(RUNNERS)]
    data["chain"] = {"seq": n + 1, "previous": None, "previous_sha256": None}
    data["chain"]["history_sha256"] = sha256(history)
    data.pop("signature", None)
    data["self_sha256"] = self_digest(data)
    data["signature"] = KEY.signature(data)
    return record_text(data).encode()


def fill(conn: Any, count: int) -> float:
    """Insert `count` records spread over the last QUARTERS quarters; records per second."""
    templates = _templates()
    now = datetime.now(UTC)
    span = (now - Quarter.of(now).last(QUARTERS)[0].start).total_seconds()
    began = time.perf_counter()
    for n in range(count):
        when = now - timedelta(seconds=span * (1 - n / count)) - timedelta(minutes=1)
        template, history = templates[n % len(templates)]
        raw = _record(template, history, n, when)
        insert_run(conn, raw, history, f"{json.loads(raw)['run_id']}.json")
    return count / (time.perf_counter() - began)


def long_history(samples: int) -> bytes:
    """A history of `samples` probe samples, 20 ms apart, as a drill writes it."""
    rng = random.Random(7)
    lines = [{"type": "clock", "mono_ns": 0, "wall_ns": 1_795_464_900_000_000_000}]
    for seq in range(samples):
        invoke = seq * 20_000_000
        outcome = "fail" if 1000 <= seq < 1100 else "ok"
        lines.append({
            "type": "op", "probe": "reads", "seq": seq, "invoke_ns": invoke,
            "complete_ns": invoke + rng.randint(300_000, 3_000_000), "outcome": outcome,
            "wall_ns": 1_795_464_900_000_000_000 + invoke, "detail": "", "values": None,
            "tags": None,
        })  # fmt: skip
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()


def insert_times(conn: Any, tries: int = 20) -> list[float]:
    """Milliseconds to insert one record with a 3,000-sample history, `tries` times."""
    template, _ = _templates()[0]
    history = long_history(3000)
    times = []
    for n in range(tries):
        raw = _record(template, history, RECORDS + n, datetime.now(UTC))
        began = time.perf_counter()
        insert_run(conn, raw, history, f"insert-{n}.json")
        times.append((time.perf_counter() - began) * 1000)
    return times


def upload_times(store: Store, tries: int = 10) -> list[float]:
    """Milliseconds of a drill's whole upload of such a record: connect, check the schema and
    the spool, insert (`drills.store.upload.send`, as `drills run` calls it)."""
    template, _ = _templates()[0]
    history = long_history(3000)
    times = []
    with tempfile.TemporaryDirectory() as work:
        for n in range(tries):
            raw = _record(template, history, RECORDS + 100 + n, datetime.now(UTC))
            data = json.loads(raw)
            (Path(work) / data["history"]).write_bytes(history)
            path = Path(work) / f"{data['run_id']}.json"
            path.write_bytes(raw)
            began = time.perf_counter()
            sent = send(store, path, Path(work) / "state")
            times.append((time.perf_counter() - began) * 1000)
            assert sent.seq is not None, sent.why
    return times


def timed(args: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "drills", *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    took = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise RuntimeError(f"drills {' '.join(args)}: {done.stderr[-800:]}")
    return took


def exporter(env: dict[str, str], records: int) -> tuple[float, list[float], float]:
    """Seconds to start (the whole chain checked), each scrape's seconds, and its RSS in MB."""
    port = free_port()
    began = time.perf_counter()
    args = ["exporter", "--port", str(port), "--schedule", "scenarios/schedule.yaml"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "drills", *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "drills exporter on ...": serving
        started = time.perf_counter() - began
        scrapes = []
        for _ in range(10):
            began = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                body = r.read().decode()
            scrapes.append(time.perf_counter() - began)
        served = [line for line in body.splitlines() if line.startswith("drills_records ")]
        assert served and float(served[0].split()[1]) == records, served
        rss = int(Path(f"/proc/{proc.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        return started, scrapes, rss / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(store: StoreServer) -> dict[str, Any]:
    url = store.fresh()
    env = {**os.environ, **store.env(url), "DRILLS_SIGNING_KEY": KEY.secret.decode()}
    target = Store(url, store.password_file.read_text().strip())
    now = Quarter.of(datetime.now(UTC))
    with open_store(target) as conn:
        rate = fill(conn, RECORDS)
        inserts = insert_times(conn)
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        db_size = str((size.fetchone() or ("?",))[0])
        count = conn.execute(
            "SELECT count(*) FROM drills_runs WHERE started_at >= %s", (now.start,)
        ).fetchone()
    uploads = upload_times(target)
    quarter = str(now)
    with tempfile.TemporaryDirectory() as out:
        report = [timed(["report", "--quarter", quarter, "--out", out], env) for _ in range(3)]
    due = timed(["due"], env)
    verify = timed(["verify"], env)
    started, scrapes, rss = exporter(env, RECORDS + 20 + 10)  # filled, inserts, uploads
    return {
        "fill_per_s": rate, "insert_ms": inserts, "db_size": db_size, "report_s": report,
        "upload_ms": uploads, "in_quarter": int(str(count[0])) if count else 0,
        "due_s": due, "verify_s": verify, "exporter_start_s": started, "scrape_s": scrapes,
        "exporter_rss_mb": rss, "quarter": quarter,
    }  # fmt: skip


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def text(found: dict[str, Any]) -> str:
    insert, report, scrape = max(found["insert_ms"]), max(found["report_s"]), max(found["scrape_s"])
    upload = max(found["upload_ms"])
    return "\n".join([
        "## Results store",
        "",
        "Generated by bench/store.py. A PostgreSQL 15 store on this machine (started by the bench,",
        f"login with a password, scram-sha-256) holding {RECORDS:,} signed records from "
        f"{len(RUNNERS)} runners over {QUARTERS} quarters",
        f"({found['in_quarter']:,} of them so far in {found['quarter']}), each with its history; "
        f"{found['db_size']} on disk. Each command is timed",
        "as a whole, Python's start included; every record's signature, digest and link checked.",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
        f"| insert of a record with a 3,000-sample history (max of 20) | {insert:.1f} ms "
        f"(median {statistics.median(found['insert_ms']):.1f}) | <= 200 ms | "
        f"{_verdict(insert, TARGETS['insert_ms'])} |",
        f"| the same, as a drill uploads it: connect, schema and spool checked, insert (max of "
        f"10) | {upload:.1f} ms (median {statistics.median(found['upload_ms']):.1f}) | <= 200 ms | "
        f"{_verdict(upload, TARGETS['insert_ms'])} |",
        f"| `drills report --store` for {found['quarter']} (max of 3) | {report:.2f} s | <= 10 s | "
        f"{_verdict(report, TARGETS['report_s'])} |",
        f"| exporter scrape over all records (max of 10) | {scrape * 1000:.0f} ms "
        f"(median {statistics.median(found['scrape_s']) * 1000:.0f}) | <= 1 s | "
        f"{_verdict(scrape, TARGETS['scrape_s'])} |",
        f"| exporter start: the whole chain read and checked | "
        f"{found['exporter_start_s']:.2f} s | | |",
        "| exporter memory (RSS): each scenario's latest record whole, the others only their "
        f"verdict and times | {found['exporter_rss_mb']:.0f} MB | | |",
        f"| `drills due --store` | {found['due_s']:.2f} s | | |",
        f"| `drills verify --store` (every history decompressed and hashed too) | "
        f"{found['verify_s']:.2f} s | | |",
        f"| filling the store, one insert per record | {found['fill_per_s']:.0f} records/s | | |",
        "",
        "The report draws timelines for 24 of the quarter's drills (report_timelines.py), a",
        "process per core: at about 0.1 s a chart, all of a CI-heavy quarter would take minutes.",
    ])  # fmt: skip


def main() -> int:
    with store_server() as store:
        found = measure(store)
    body = text(found)
    print(body)
    replace_section(REPO / "docs" / "benchmarks.md", "store", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
