"""Metrics end to end with a real Pushgateway and a real Prometheus on 127.0.0.1: a pushed drill
is queryable, the exporter is scraped, the alert rules load and fire, the dashboard names only
metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from drills import metrics
from tests.conftest import REPO, run_drills
from tests.unit.drills.metrics.test_metrics import synthetic_record, typed, write_record

BINARIES = ("prometheus", "prometheus-pushgateway", "promtool")
MISSING = [name for name in BINARIES if shutil.which(name) is None]

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"{', '.join(MISSING)} not installed "
        "(apt-get install prometheus prometheus-pushgateway)",
    ),
]

ALERTS = REPO / "dashboards" / "alerts.yml"
DASHBOARD = REPO / "dashboards" / "drills.json"
SCHEDULE = REPO / "scenarios" / "schedule.yaml"
EXPORTER_JOB = "drills-exporter"
READY_S = 30.0
QUERY_WAIT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited {self.process.returncode}:\n{self.log_tail()}")
            try:
                if http_get(f"{self.url}/-/ready", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.name} not ready after {READY_S}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(name: str, args: list[str], workdir: Path, port: int) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, stdin=subprocess.DEVNULL
        )
    return Server(name, process, log, f"http://127.0.0.1:{port}")


@dataclass
class Stack:
    pushgateway: Server
    prometheus: Server
    exporter: metrics.Exporter
    records: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        code, body = http_get(url)
        answer = json.loads(body)
        assert code == 200 and answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for(
        self, expr: str, done: Callable[[list[dict[str, Any]]], bool]
    ) -> list[dict[str, Any]]:
        """Query until `done(result)`, for at most QUERY_WAIT_S."""
        deadline = time.monotonic() + QUERY_WAIT_S
        result = self.query(expr)
        while not done(result):
            if time.monotonic() > deadline:
                pytest.fail(f"{expr}: still {result} after {QUERY_WAIT_S}s")
            time.sleep(0.25)
            result = self.query(expr)
        return result


def by_scenario(result: list[dict[str, Any]]) -> dict[str, float]:
    return {r["metric"]["scenario"]: float(r["value"][1]) for r in result}


def exporter_records(directory: Path, now: datetime) -> None:
    """Two scenarios of the shipped schedule this quarter: one passing, one failing."""
    write_record(directory, synthetic_record("replication-lag", "pass", now - timedelta(seconds=5)))
    write_record(directory, synthetic_record("primary-hang", "fail", now - timedelta(seconds=5)))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="drills-prometheus-"))
    servers: list[Server] = []
    exporter: metrics.Exporter | None = None
    try:
        records = work / "runs"
        exporter_records(records, datetime.now(UTC))
        exporter = metrics.start_exporter(records, SCHEDULE, "127.0.0.1", 0)

        pgw_port = free_port()
        pushgateway = start(
            "pushgateway",
            [
                "prometheus-pushgateway",
                f"--web.listen-address=127.0.0.1:{pgw_port}",
                "--persistence.file=",  # Debian's default is /var/lib/prometheus/...
            ],
            work,
            pgw_port,
        )
        servers.append(pushgateway)
        pushgateway.wait_ready()

        config = work / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{json.dumps(str(ALERTS))}]\n"
            "scrape_configs:\n"
            "  - job_name: pushgateway\n"
            "    honor_labels: true\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{pgw_port}']}}]\n"
            f"  - job_name: {EXPORTER_JOB}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n"
        )
        prom_port = free_port()
        prometheus = start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            work,
            prom_port,
        )
        servers.append(prometheus)
        prometheus.wait_ready()
        yield Stack(pushgateway, prometheus, exporter, records)
    finally:
        for server in reversed(servers):
            server.stop()
        if exporter is not None:
            exporter.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.postgres
def test_pushed_drill_rto_reaches_prometheus(stack: Stack, sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    run = run_drills(
        ["run", "scenarios/primary-hang.yaml", "--reports-dir", str(reports), "--no-live"],
        sandbox,
        reports,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:] + run.stdout
    record = run.record()
    rto_s = record["measurements"]["rto_s"]
    assert isinstance(rto_s, float) and rto_s > 0

    message = metrics.after_drill(typed(record), stack.pushgateway.url)
    assert message is not None and stack.pushgateway.url in message

    query = 'drills_rto_seconds{job="drills", scenario="primary-hang"}'
    result = stack.wait_for(query, lambda r: len(r) == 1 and float(r[0]["value"][1]) == rto_s)
    assert float(result[0]["value"][1]) == rto_s
    verdict = stack.query(f'drills_verdict{{job="drills", verdict="{record["verdict"]}"}}')
    assert by_scenario(verdict)["primary-hang"] == 1.0
    print(f"Prometheus returned drills_rto_seconds = {result[0]['value'][1]} (record {rto_s})")


def test_last_success_survives_a_failing_push(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.PUSHGATEWAY_ENV, stack.pushgateway.url)
    now = datetime.now(UTC)
    passed = synthetic_record("push-synthetic", "pass", now - timedelta(minutes=10))
    failed = synthetic_record("push-synthetic", "fail", now - timedelta(minutes=1), rpo_s=None)
    assert metrics.after_drill(typed(passed), None) is not None
    success = metrics.end_of(typed(passed))
    assert success is not None
    assert metrics.after_drill(typed(failed), None) is not None

    selector = '{job="drills", scenario="push-synthetic"}'
    stack.wait_for(f'drills_run_info{selector[:-1]}, run_id="{failed["run_id"]}"}}', bool)
    verdict = stack.query(f'drills_verdict{selector[:-1]}, verdict="fail"}}')
    assert [r["value"][1] for r in verdict] == ["1"]
    last = stack.query(f"drills_last_success_timestamp_seconds{selector}")
    assert [float(r["value"][1]) for r in last] == [success]
    # the failing run had no RPO: the passing run's value is gone with its group, not kept
    stack.wait_for(f"drills_rpo_seconds{selector}", lambda r: r == [])


def test_exporter_is_scraped(stack: Stack) -> None:
    job = f'job="{EXPORTER_JOB}"'
    stack.wait_for(f"up{{{job}}}", lambda r: len(r) == 1 and r[0]["value"][1] == "1")
    fail = stack.wait_for(f'drills_verdict{{{job}, verdict="fail"}}', lambda r: len(r) == 2)
    assert by_scenario(fail) == {"primary-hang": 1.0, "replication-lag": 0.0}
    coverage = stack.query(f"drills_coverage_ratio{{{job}}}")
    assert [float(r["value"][1]) for r in coverage] == [1 / 9]  # replication-lag of 9 required
    state = stack.query(f'drills_requirement_state{{{job}, scenario="replication-lag"}} == 1')
    assert [r["metric"]["state"] for r in state] == ["done"]
    assert float(stack.query(f"drills_exporter_scrape_error{{{job}}}")[0]["value"][1]) == 0
    missed = stack.query(f'drills_objective_met{{{job}, objective="rto"}}')
    assert by_scenario(missed) == {"primary-hang": 0.0, "replication-lag": 1.0}


def test_alert_rules_load_and_evaluate(stack: Stack) -> None:
    def evaluated(groups: list[dict[str, Any]]) -> bool:
        rules = [rule for group in groups for rule in group["rules"]]
        return bool(rules) and all(rule["health"] != "unknown" for rule in rules)

    deadline = time.monotonic() + QUERY_WAIT_S
    while True:
        code, body = http_get(f"{stack.prometheus.url}/api/v1/rules")
        groups = json.loads(body)["data"]["groups"]
        if (code == 200 and evaluated(groups)) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert {name: rule["health"] for name, rule in rules.items()} == dict.fromkeys(rules, "ok")
    # the failing synthetic primary-hang run missed its RTO: that alert has no `for`
    firing = stack.wait_for(
        'ALERTS{alertname="DrillObjectiveMissed", alertstate="firing"}',
        lambda r: any(a["metric"].get("scenario") == "primary-hang" for a in r),
    )
    assert {
        a["metric"]["objective"] for a in firing if a["metric"]["scenario"] == "primary-hang"
    } == {"rto"}


def test_promtool_checks_the_alert_rules() -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


RULE_TESTS = """
rule_files: [{alerts}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'drills_requirement_state{{job="e",scenario="db",state="overdue"}}'
        values: '1x30'
      - series: 'drills_requirement_state{{job="e",scenario="db",state="done"}}'
        values: '0x30'
      - series: 'drills_objective_met{{job="p",scenario="db",objective="rpo"}}'
        values: '0x30'
      - series: 'drills_objective_met{{job="p",scenario="db",objective="rto"}}'
        values: '1x30'
      - series: 'drills_probe_objective_met{{job="p",scenario="db",probe="shop",objective="rto"}}'
        values: '0x30'
      - series: 'drills_probe_objective_met{{job="p",scenario="db",probe="db",objective="rto"}}'
        values: '1x30'
      - series: 'up{{job="drills-exporter",instance="e"}}'
        values: '1 1 1 0x27'
    alert_rule_test:
      - eval_time: 10m
        alertname: DrillRequiredOverdue
      - eval_time: 20m
        alertname: DrillRequiredOverdue
        exp_alerts:
          - exp_labels: {{severity: ticket, scenario: db}}
            exp_annotations:
              summary: Required drill db is overdue
              description: >-
                The schedule requires a passing run of db inside its window this quarter; the
                window has closed without one. Run it (drills run scenarios/<file>.yaml) and
                see the quarterly report (drills report).
      - eval_time: 1m
        alertname: DrillObjectiveMissed
        exp_alerts:
          - exp_labels: {{severity: ticket, scenario: db, objective: rpo}}
            exp_annotations:
              summary: "db: the latest drill missed its rpo objective"
              description: >-
                The latest run of db measured a rpo worse than its objective. Its run record
                (reports/runs/) has the measurement, the objective and the reason.
      - eval_time: 1m
        alertname: DrillProbeObjectiveMissed
        exp_alerts:
          - exp_labels: {{severity: ticket, scenario: db, probe: shop, objective: rto}}
            exp_annotations:
              summary: "db: the latest drill missed the rto objective of probe shop"
              description: >-
                The latest run of db measured a rto of shop worse than the probe's own
                objective. Its run record (reports/runs/) has the measurement under
                verdicts."rto:shop".
      - eval_time: 5m
        alertname: DrillsExporterDown
      - eval_time: 10m
        alertname: DrillsExporterDown
        exp_alerts:
          - exp_labels: {{severity: ticket, job: drills-exporter, instance: e}}
            exp_annotations:
              summary: The drills exporter on e is down
              description: >-
                Prometheus cannot scrape e: the drill alerts above are blind until it is back
                (drills exporter --port N).
  - interval: 1m
    input_series:
      - series: 'drills_seconds_since_last_success{{job="e",scenario="db"}}'
        values: '8553600+60x1600'
      - series: 'drills_required{{job="e",scenario="db"}}'
        values: '1x1600'
      - series: 'drills_required{{job="e",scenario="primary-hang"}}'
        values: '1x1600'
      - series: 'drills_last_success_timestamp_seconds{{job="e",scenario="db"}}'
        values: '0x1600'
      - series: 'drills_coverage_ratio{{job="e"}}'
        values: '0x1600'
      - series: 'drills_quarter_runs{{job="e",scenario="db"}}'
        values: '0x1600'
      - series: 'drills_quarter_start_timestamp_seconds{{job="e"}}'
        values: '-2592000x1600'
    alert_rule_test:
      - eval_time: 24h
        alertname: DrillResultStale
      - eval_time: 26h
        alertname: DrillResultStale
        exp_alerts:
          - exp_labels: {{severity: ticket, scenario: db}}
            exp_annotations:
              summary: db last passed 100d 2h 0m 0s ago
              description: >-
                The newest passing run of the required drill db is older than 100 days: more
                than a quarter without evidence that recovery works.
      - eval_time: 2h
        alertname: DrillRequiredNeverPassed
        exp_alerts:
          - exp_labels: {{severity: ticket, scenario: primary-hang}}
            exp_annotations:
              summary: Required drill primary-hang has never passed
              description: >-
                The schedule requires primary-hang, and no run record shows a passing run of
                it.
      - eval_time: 2h
        alertname: DrillsNoneThisQuarter
        exp_alerts:
          - exp_labels: {{severity: ticket}}
            exp_annotations:
              summary: No required drill has passed this quarter
              description: >-
                More than 30 days into the quarter and none of the scheduled drills has a
                passing run (0 runs of any kind so far).
"""


def test_alert_rules_fire_as_intended(tmp_path: Path) -> None:
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(RULE_TESTS.format(alerts=json.dumps(str(ALERTS))))
    result = subprocess.run(
        ["promtool", "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def exported_names(tmp_path: Path) -> set[str]:
    """Sample names the exporter and a per-run registry produce over synthetic records."""
    now = datetime.now(UTC)
    exporter_records(tmp_path, now)
    registry = CollectorRegistry()
    registry.register(metrics.RecordsCollector(tmp_path, SCHEDULE))
    text = generate_latest(registry).decode()
    record = synthetic_record("x", "pass", now)
    judged = {"verdict": "met", "objective": 10, "measured": 1.5, "reason": ""}
    record["verdicts"] |= {"rto:shop": judged, "availability:shop": judged | {"objective": 0.99}}
    text += generate_latest(metrics.registry_for(typed(record))).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, child in node.items():
            if key in ("expr", "definition") and isinstance(child, str):
                yield child
            elif key == "query" and isinstance(child, dict) and "query" in child:
                yield str(child["query"])
            else:
                yield from exprs(child)
    elif isinstance(node, list):
        for child in node:
            yield from exprs(child)


def test_dashboard_and_alerts_name_only_exported_metrics(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panel_targets = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert panel_targets and all(
        p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"]
    )
    known = exported_names(tmp_path)
    metric = re.compile(r"\bdrills_[a-z0-9_]+")
    used = {name for text in exprs(dashboard) for name in metric.findall(text)}
    assert len(used) >= 10, used
    used |= set(metric.findall(ALERTS.read_text()))  # exprs and annotation queries
    assert sorted(used - known) == []
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("verdict", "rto", "rpo", "error budget", "coverage", "last success", "lost"):
        assert topic in titles
