"""`example`: send `question` over TCP and expect `answer` back, one connection per sample.

A probe kind that lives in its own distribution: it registers in `drills.probe.PROBES` and
declares itself as a `drills.probes` entry point in its pyproject.toml.
"""

from __future__ import annotations

import socket
from typing import Literal

from pydantic import Field

from drills.history import Outcome
from drills.probe import PROBES, Client, Probe, ProbeConfig, Sample


class ExampleConfig(ProbeConfig):
    kind: Literal["example"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    question: str = "ping"
    answer: str = "pong"


class ExampleClient(Client):
    def __init__(self, config: ExampleConfig) -> None:
        self.config = config

    def sample(self, seq: int) -> Sample:
        cfg = self.config
        try:
            with socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout) as sock:
                sock.sendall(f"{cfg.question} {seq}\n".encode())
                reply = sock.makefile("r").readline().strip()
        except OSError as exc:
            return Sample(Outcome.FAIL, str(exc) or type(exc).__name__)
        if reply != cfg.answer:
            return Sample(Outcome.FAIL, f"answered {reply!r}", tags={"answer": reply})
        return Sample(Outcome.OK, "", tags={"answer": reply})


@PROBES.register("example")
class ExampleProbe(Probe):
    Config = ExampleConfig

    def client(self) -> Client:
        assert isinstance(self.config, ExampleConfig)
        return ExampleClient(self.config)
