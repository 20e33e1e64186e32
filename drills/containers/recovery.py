"""`drills recover` for containers: the base of every journal entry that names a container on
an engine. The entries themselves live with the faults and labs that write them."""

from __future__ import annotations

from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from pydantic import Field

from drills.containers.engine import EngineSpec, connect
from drills.journal import JournalEntry, Recovery


def engine_client(recovery: Recovery, engine: dict[str, Any]) -> docker.DockerClient:
    """One client per engine named in the journal."""
    spec = EngineSpec.model_validate(engine or {})
    return recovery.shared(f"engine:{spec.model_dump_json()}", lambda: connect(spec))


class ContainerEntry(JournalEntry):
    """A change to one container, pinned to its engine's resolved address, so that `drills
    recover` reaches the same engine whatever its own environment says."""

    target: str | None = None
    engine: dict[str, Any] = Field(default_factory=dict)
    id: str = ""

    def about(self) -> str:
        return self.target or self.id[:12]

    def client(self, recovery: Recovery) -> docker.DockerClient:
        return engine_client(recovery, self.engine)

    def container(self, recovery: Recovery) -> Container | None:
        """The container, or None when it is gone (nothing left to restore)."""
        try:
            return self.client(recovery).containers.get(self.id)
        except docker.errors.NotFound:
            return None
