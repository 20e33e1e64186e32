"""A probe kind from another installed distribution works like a built-in one.

tests/plugins/drills-example-probe is installed into the venv (and uninstalled after), then a
real drill samples a TCP answerer that this test runs. No servers, no lab.
"""

from __future__ import annotations

import json
import shutil
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_drills

PLUGIN = REPO / "tests" / "plugins" / "drills-example-probe"
DISTRIBUTION = "drills-example-probe"

SCENARIO = """
version: 1
name: plugin-probe
probes:
  answers: {{kind: example, port: {port}, interval: 20ms, timeout: 500ms}}
service_probe: answers
steps:
  - wait: 400ms
"""


class _Answer(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        question = self.rfile.readline().decode()
        self.wfile.write(b"pong\n" if question.startswith("ping") else b"what?\n")


@pytest.fixture
def answerer() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Answer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def example_plugin(tmp_path: Path) -> Iterator[None]:
    # Built from a copy: building writes egg-info and build/ beside the sources. With build
    # isolation, as `make setup` installs drills: the venv's own setuptools cannot build wheels.
    source = tmp_path / "plugin-source"
    shutil.copytree(PLUGIN, source)
    _pip("install", "--no-deps", str(source))
    try:
        yield
    finally:
        _pip("uninstall", "-y", DISTRIBUTION)


def test_validate_rejects_the_kind_without_the_plugin(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "plugin.yaml"
    scenario.write_text(SCENARIO.format(port=9))
    run = run_drills(["validate", str(scenario)], sandbox, tmp_path)
    assert run.returncode == 2
    assert f"{scenario}:5: probes.answers.kind: unknown kind 'example'" in run.stderr


def test_a_drill_runs_with_a_probe_kind_from_another_distribution(
    example_plugin: None, answerer: int, sandbox: Path, tmp_path: Path
) -> None:
    scenario = tmp_path / "plugin.yaml"
    scenario.write_text(SCENARIO.format(port=answerer))
    reports = tmp_path / "runs"
    listed = run_drills(["list"], sandbox, reports)
    assert "example" in listed.stdout.split("probes: ")[1].split("\n")[0]

    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    record = run.record()
    probe = record["probes"]["answers"]
    assert probe["kind"] == "example", run.stderr
    assert probe["samples"] >= 10 and probe["ok"] == probe["samples"]
    assert probe["downtime_s"] == 0
    history = [json.loads(line) for line in next(reports.glob("*.history.jsonl")).open()]
    ops = [h for h in history if h["type"] == "op" and h["probe"] == "answers"]
    assert len(ops) == probe["samples"]
    assert {op["outcome"] for op in ops} == {"ok"}
    assert {op["tags"]["answer"] for op in ops} == {"pong"}
    kinds = {h["name"]: h["kind"] for h in history if h["type"] == "probe"}
    assert kinds == {"answers": "example"}
