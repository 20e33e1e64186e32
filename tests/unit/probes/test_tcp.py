"""`tcp`: ok while something listens, fail when the port is closed."""

from __future__ import annotations

import socket

from drills.history import Outcome
from drills.probe import PROBES
from probes.tcp import TcpClient, TcpConfig, TcpProbe


def config(port: int) -> TcpConfig:
    return TcpConfig.model_validate({"kind": "tcp", "port": port, "timeout": "500ms"})


def test_a_listening_port_is_ok_and_a_closed_one_fails() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = TcpClient(config(port))
    try:
        assert client.sample(1).outcome is Outcome.OK
    finally:
        server.close()
    refused = client.sample(2)
    assert refused.outcome is Outcome.FAIL
    assert refused.detail == "ConnectionRefusedError: Connection refused"


def test_tcp_is_a_read_probe_registered_under_its_kind() -> None:
    assert PROBES["tcp"] is TcpProbe
    assert TcpProbe.timeout_outcome is Outcome.FAIL and not TcpProbe.writes
