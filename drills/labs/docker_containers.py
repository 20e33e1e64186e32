"""The containers of a docker lab: extra containers a scenario adds, and how the lab's
containers and network are removed, at stop or by `drills recover` (the `docker-lab` entry)."""

from __future__ import annotations

from typing import Any, Literal

import docker
import docker.errors
from pydantic import Field

from drills.containers.recovery import engine_client
from drills.errors import LabError
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.model import StrictModel

LAB_LABEL = "org.drills.lab"
RUN_LABEL = "org.drills.run"


class ContainerSpec(StrictModel):
    image: str
    command: list[str] | str | None = Field(None, description="arguments (or a shell command)")
    entrypoint: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    volumes: list[str] = Field(default_factory=list, description="SOURCE:DEST[:ro]")
    ports: list[str] = Field(
        default_factory=list, description="HOST_PORT:CONTAINER_PORT, published on 127.0.0.1"
    )
    user: str | None = None

    def run_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `containers.run` for this container."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "environment": self.environment,
            "volumes": volumes(self.volumes),
            "ports": _ports(self.ports),
        }
        if self.command is not None:
            kwargs["command"] = self.command
        if self.entrypoint is not None:
            kwargs["entrypoint"] = self.entrypoint
        if self.user is not None:
            kwargs["user"] = self.user
        return kwargs


def volumes(specs: list[str]) -> list[str]:
    for spec in specs:
        if len(spec.split(":")) not in (2, 3):
            raise LabError(f"volume {spec!r}: expected SOURCE:DEST or SOURCE:DEST:ro")
    return specs


def _ports(specs: list[str]) -> dict[str, tuple[str, int]]:
    published: dict[str, tuple[str, int]] = {}
    for spec in specs:
        host, _, inside = spec.rpartition(":")
        if not host.isdigit() or not inside.split("/")[0].isdigit():
            raise LabError(f"port {spec!r}: expected HOST_PORT:CONTAINER_PORT")
        key = inside if "/" in inside else f"{inside}/tcp"
        published[key] = ("127.0.0.1", int(host))
    return published


def remove_lab(client: docker.DockerClient, lab_id: str) -> list[str]:
    """Remove every container and network labelled as lab `lab_id`; return their names."""
    removed = []
    label: dict[str, str | list[str] | bool] = {"label": [f"{LAB_LABEL}={lab_id}"]}
    for container in client.containers.list(all=True, filters=label):
        try:
            container.remove(force=True, v=True)
            removed.append(str(container.name))
        except docker.errors.NotFound:
            pass
    for network in client.networks.list(filters=label):
        try:
            network.remove()
            removed.append(f"network {network.name}")
        except docker.errors.NotFound:
            pass
    return removed


@JOURNAL.register("docker-lab")
class DockerLabCreated(JournalEntry):
    """A docker lab about to be created: everything carrying its label is removed."""

    op: Literal["docker-lab"] = "docker-lab"
    subject = "label"
    engine: dict[str, Any] = Field(default_factory=dict)
    label: str

    def undo(self, recovery: Recovery) -> str | None:
        removed = remove_lab(engine_client(recovery, self.engine), self.label)
        return f"removed docker lab {self.label} ({len(removed)} objects)" if removed else None
