"""`tcp`: open a TCP connection and close it. A paused server still accepts (the kernel does)."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time
from typing import Literal

from pydantic import Field

from drills.history import Outcome
from drills.probe import (
    PROBES,
    WRITE,
    Client,
    Exchange,
    LoopClient,
    Probe,
    ProbeConfig,
    Sample,
    Wait,
)


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


class TcpLoopClient(LoopClient):
    """The same connect on the event loop, to an IP address (no name lookup)."""

    def __init__(self, config: TcpConfig, family: socket.AddressFamily) -> None:
        self.config = config
        self.family = family

    def exchange(self, seq: int) -> Exchange:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            code = sock.connect_ex((self.config.host, self.config.port))
            if code in (errno.EINPROGRESS, errno.EINTR):  # EAGAIN: no local port, a failure
                give_up = time.monotonic_ns() + round(self.config.timeout * 1e9)
                try:
                    yield Wait(sock.fileno(), WRITE, give_up)
                except TimeoutError:
                    return Sample(Outcome.FAIL, "TimeoutError: timed out")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                exc = OSError(code, os.strerror(code))  # create_connection's subclass
                return Sample(Outcome.FAIL, f"{type(exc).__name__}: {exc.strerror}")
            return Sample(Outcome.OK, "")
        finally:
            sock.close()


@PROBES.register("tcp")
class TcpProbe(Probe):
    Config = TcpConfig

    def client(self) -> Client:
        assert isinstance(self.config, TcpConfig)
        return TcpClient(self.config)

    def loop_client(self) -> LoopClient | None:
        assert isinstance(self.config, TcpConfig)
        try:
            address = ipaddress.ip_address(self.config.host)
        except ValueError:
            return None  # a name: looked up on a worker thread, never on the loop
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        return TcpLoopClient(self.config, family)
