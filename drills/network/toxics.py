"""Link faults as data, in Toxiproxy's vocabulary: a toxic has a type, a stream, a toxicity and
attributes. drills' own proxy implements the subset below; a real Toxiproxy implements them all.

- latency: attributes `latency` and `jitter` (ms): each chunk is delayed, order kept.
- bandwidth: attribute `rate` (KB/s).
- timeout: attribute `timeout` (ms). Data is held, not passed (a blackhole); with a timeout
  above 0 the connection is closed after that long. Removing the toxic releases what was held.
- reset_peer: attribute `timeout` (ms): connections are reset (RST) after that long.

A link that is disabled ("down") refuses new connections and resets the ones it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Stream = Literal["upstream", "downstream"]
STREAMS: tuple[Stream, ...] = ("upstream", "downstream")
TOXIC_TYPES = ("latency", "bandwidth", "timeout", "reset_peer")


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TOXIC_TYPES:
            raise ValueError(f"unknown toxic type {self.type!r} (known: {', '.join(TOXIC_TYPES)})")
        if self.stream not in STREAMS:
            raise ValueError(f"stream is upstream or downstream, not {self.stream!r}")
        if not 0 <= self.toxicity <= 1:
            raise ValueError("toxicity lies in [0, 1]")

    def attr(self, key: str, default: float = 0.0) -> float:
        return float(self.attributes.get(key, default))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Toxic:
        stream = data.get("stream", "downstream")
        kind = str(data.get("type", ""))
        return cls(
            name=str(data.get("name") or f"{kind}_{stream}"),
            type=kind,
            stream=stream,
            toxicity=float(data.get("toxicity", 1.0)),
            attributes={k: float(v) for k, v in (data.get("attributes") or {}).items()},
        )
