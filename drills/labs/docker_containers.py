"""The containers of a docker lab: extra containers a scenario adds, and how the lab's
containers and network are removed, at stop or by `drills recover` (the `docker-lab` entry)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import docker
import docker.errors
import psycopg
from docker.models.containers import Container
from pydantic import Field

from drills.containers.engine import engine_error
from drills.containers.recovery import engine_client
from drills.errors import LabError
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.model import StrictModel

LAB_LABEL = "org.drills.lab"
RUN_LABEL = "org.drills.run"
READY_TIMEOUT_S = 60.0


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


def ensure_image(
    client: docker.DockerClient, name: str, pull: bool, progress: Callable[[str], None], hint: str
) -> Any:
    """The engine's image `name`, pulled when it does not have it and `pull` allows."""
    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.DockerException as exc:
        raise engine_error(f"cannot inspect image {name}", exc) from exc
    if not pull:
        raise LabError(f"image {name} is not on the engine (and lab.pull is false)")
    progress(f"lab: pulling {name}")
    try:
        return client.images.pull(name)
    except docker.errors.DockerException as exc:
        reason = " ".join(str(exc).split())[:200]
        raise LabError(
            f"image {name} is not on the engine and could not be pulled ({reason}){hint}"
        ) from exc


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
        where = self.engine.get("host") or self.engine.get("context")
        if not removed:
            return None
        return f"removed docker lab {self.label} from {where} ({len(removed)} objects)"


def published_port(container: Container, port: str = "5432/tcp") -> int:
    """The host port the engine published the container's `port` on."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        container.reload()
        bindings = (container.ports or {}).get(port) or []
        if bindings:
            return int(bindings[0]["HostPort"])
        if container.status == "exited":
            break
        time.sleep(0.05)
    raise LabError(f"{container.name}: port {port} not published: {_logs(container)}")


def _logs(container: Container) -> str:
    try:
        text = container.logs(tail=3).decode(errors="replace")
    except docker.errors.DockerException:
        return "(no logs)"
    return " | ".join(text.strip().splitlines()) or "(no output)"


def wait_ready(container: Container, conninfo: str) -> None:
    """Until PostgreSQL in the container accepts a connection; LabError if it exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(conninfo, connect_timeout=2):
                return
        except psycopg.Error as exc:
            last = " ".join(str(exc).split())
        container.reload()
        if container.status in ("exited", "dead"):
            raise LabError(f"{container.name} exited: {_logs(container)}")
        time.sleep(0.1)
    raise LabError(f"{container.name}: not ready after {READY_TIMEOUT_S:g}s: {last}")
