"""The harness knows when it is late (issue 14): overloaded on purpose, a drill's verdict is
`error` with the overload stated, and no probe reports outages the target never had.

The target is a TCP listener this test owns; the test makes its one outage itself (the
listener closed for a second, so connections are refused, then opened again on the same port)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from tests.conftest import run_drills

PROBES = 300  # 30,000 samples/s: at 20,000 a fast run kept up (4.5% late)
OUTAGE_S = 1.0


class Listener:
    """Accepts and closes connections on a fixed loopback port; `outage()` refuses them for a
    while, starting once the drill's probes have connected."""

    def __init__(self) -> None:
        self.sock = self._listen(0)
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.outage_at: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(4096)
        sock.settimeout(0.05)
        return sock

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (TimeoutError, OSError):
            return
        conn.close()
        self.connected.set()

    def _run(self) -> None:
        deadline = time.monotonic() + 60  # bounded: the drill lasts a few seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._accept()

    def start(self) -> None:
        self._thread.start()

    def outage(self, after_s: float) -> None:
        self.connected.wait(timeout=30)
        time.sleep(after_s)
        old = self.sock
        started = time.monotonic()
        old.close()
        time.sleep(OUTAGE_S)
        self.sock = self._listen(self.port)
        self.outage_at = (started, time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def _scenario(port: int) -> str:
    probes = "".join(
        f"  p{i}: {{kind: tcp, port: {port}, interval: 10ms, timeout: 500ms}}\n"
        for i in range(PROBES)
    )
    return (
        "version: 1\nname: overloaded\n"
        "objectives: {rto: 30m, rpo: 5m, availability: 99.99%}\n"
        f"probes:\n{probes}service_probe: p0\n"
        "steps:\n  - wait: 4s\n"
    )


def test_an_overloaded_harness_is_an_error_and_makes_no_false_outage(
    sandbox: Path, tmp_path: Path
) -> None:
    listener = Listener()
    listener.start()
    scenario = tmp_path / "overloaded.yaml"
    scenario.write_text(_scenario(listener.port))
    outage = threading.Thread(target=listener.outage, args=(1.5,), daemon=True)
    outage.start()
    try:
        reports = tmp_path / "runs"
        run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    finally:
        outage.join(timeout=30)
        listener.stop()
    assert listener.outage_at is not None
    assert run.returncode == 2, run.stdout + run.stderr
    record = run.record()
    assert record["verdict"] == "error"
    assert record["error"].startswith("harness overloaded: "), record["error"]
    assert record["error"].endswith("use fewer probes or longer intervals")
    assert "harness overloaded" in run.stdout
    harness = record["harness"]
    assert round(harness["late"] / harness["samples"], 6) == harness["late_share"] > 0.05
    assert harness["lag_max_ms"] >= harness["lag_p99_ms"] >= harness["lag_p50_ms"]
    for name, probe in record["probes"].items():
        assert len(probe["outages"]) <= 1, (name, probe["outages"])
        assert probe["late"] + probe["skipped"] > 0
