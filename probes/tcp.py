"""`tcp`: open a TCP connection and close it. A paused server still accepts (the kernel does)."""

from __future__ import annotations

import socket
from typing import Literal

from pydantic import Field

from drills.history import Outcome
from drills.probe import PROBES, Client, Probe, ProbeConfig, Sample


class TcpConfig(ProbeConfig):
    kind: Literal["tcp"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class TcpClient(Client):
    def __init__(self, config: TcpConfig) -> None:
        self.config = config

    def sample(self, seq: int) -> Sample:
        try:
            with socket.create_connection(
                (self.config.host, self.config.port), timeout=self.config.timeout
            ):
                return Sample(Outcome.OK, "")
        except OSError as exc:
            return Sample(Outcome.FAIL, f"{type(exc).__name__}: {exc.strerror or exc}")


@PROBES.register("tcp")
class TcpProbe(Probe):
    Config = TcpConfig

    def client(self) -> Client:
        assert isinstance(self.config, TcpConfig)
        return TcpClient(self.config)
