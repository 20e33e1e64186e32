"""`http-write` through a service of the test's own, not the lab's order service (issue 18 item
4): a templated body and headers, the writes looked up again through a GET URL template, and
the acknowledged writes the service then lost counted by a real `drills run`."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import drills_cli, drills_env

LOSES_EVERY = 7  # it acknowledges every write, and keeps none whose id is a multiple of this


class Ledger(BaseHTTPRequestHandler):
    kept: ClassVar[dict[str, dict[str, object]]] = {}
    acknowledged: ClassVar[list[int]] = []

    def do_PUT(self) -> None:
        if self.headers.get("X-Api-Key") != "k-123":
            self._answer(401)
            return
        entry = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        number = int(str(entry["ref"]).rsplit("/", 1)[1])
        if number % LOSES_EVERY:
            self.kept[str(entry["ref"])] = entry
        self.acknowledged.append(number)
        self._answer(201)

    def do_GET(self) -> None:
        ref = parse_qs(urlsplit(self.path).query)["ref"][0]
        self._answer(200 if ref in self.kept else 404)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ledger() -> Iterator[tuple[int, type[Ledger]]]:
    handler = type("Handler", (Ledger,), {"kept": {}, "acknowledged": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_lost_writes_through_an_own_service_are_counted(
    ledger: tuple[int, type[Ledger]], sandbox: Path, tmp_path: Path
) -> None:
    port, handler = ledger
    base = f"http://127.0.0.1:{port}"
    scenario = tmp_path / "own-service.yaml"
    scenario.write_text(
        f"""
name: own-service
probes:
  up: {{kind: tcp, port: {port}, interval: 50ms}}
  entries:
    kind: http-write
    url: {base}/entries
    method: PUT
    body: '{{"ref": "{{run_id}}/{{probe}}/{{id}}", "amount": 1}}'
    headers: {{X-Api-Key: k-123}}
    verify_url: "{base}/entries/lookup?ref={{run_id}}/{{probe}}/{{id}}"
    interval: 50ms
service_probe: up
write_probe: entries
objectives: {{rpo: 0s}}  # any acknowledged write lost misses it
steps:
  - wait: 1500ms
"""
    )
    reports = tmp_path / "runs"
    run = drills_cli(
        ["run", str(scenario), "--reports-dir", str(reports), "--no-live"], drills_env(sandbox)
    )
    [path] = reports.glob("*.json")
    record = json.loads(path.read_text())
    lost = sorted(n for n in handler.acknowledged if n % LOSES_EVERY == 0)
    assert len(handler.acknowledged) >= 20, run.stderr
    assert record["probes"]["entries"]["ok"] == len(handler.acknowledged)
    measured = record["measurements"]
    assert measured["lost_writes"] == len(lost) > 0, run.stdout
    assert measured["lost_write_ids"] == lost
    assert record["verdicts"]["rpo"]["verdict"] == "missed", record["verdicts"]
