"""A container as a target: found by name, id or labels on an engine; acted on through the API.

Compose stacks are selected by the labels compose puts on every container
(`com.docker.compose.project`, `com.docker.compose.service`).
"""

from __future__ import annotations

import signal
import time
from typing import Any, Literal

import docker
import docker.errors
import requests
from docker.models.containers import Container

from drills.abilities import Ability, Injection
from drills.containers.engine import EngineSpec, engine_error, resolved_engine
from drills.containers.recovery import ContainerEntry
from drills.errors import EngineError, StepError, TargetError
from drills.journal import JOURNAL, Recovery
from drills.signals import held
from drills.targets import promote_postgres

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


def find_container(
    client: docker.DockerClient, name: str | None, labels: dict[str, str]
) -> Container:
    """The one container with this name or id, or the one carrying all these labels."""
    try:
        if name is not None:
            return client.containers.get(name)
        filters: dict[str, str | list[str] | bool] = {
            "label": [f"{key}={value}" for key, value in sorted(labels.items())]
        }
        found = client.containers.list(all=True, filters=filters)
    except docker.errors.NotFound:
        raise TargetError(f"no container named {name!r} on the engine") from None
    except docker.errors.DockerException as exc:
        raise engine_error("cannot list containers", exc) from exc
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    if not found:
        raise TargetError(f"no container has the labels {wanted}")
    if len(found) > 1:
        names = ", ".join(sorted(str(c.name) for c in found))
        raise TargetError(
            f"{len(found)} containers have the labels {wanted} ({names}): add a label "
            "(e.g. com.docker.compose.container-number) or name the container"
        )
    return found[0]


@JOURNAL.register("container-pause")
class ContainerPause(ContainerEntry):
    op: Literal["container-pause"] = "container-pause"

    def undo(self, recovery: Recovery) -> str | None:
        container = self.container(recovery)
        if container is None or container.status != "paused":
            return None
        container.unpause()
        return f"unpaused container {self.about()}"


class ContainerTarget:
    """Every ability through the engine: signals (`docker kill --signal`), pause (the cgroup
    freezer), stop/start, restart, networks. `PostgresContainer` adds promote."""

    def __init__(
        self,
        name: str,
        client: docker.DockerClient,
        container: Container,
        dsn: str | None = None,
        stop_timeout_s: int = 10,
        engine: EngineSpec | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.engine = engine or EngineSpec.default()
        self.container = container
        self.id = str(container.id)
        self.dsn = dsn
        self.stop_timeout_s = stop_timeout_s

    def _call(self, what: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with held():
                return action(*args, **kwargs)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise engine_error(f"{self.name}: cannot {what}", exc) from exc

    def refresh(self) -> Container:
        self._call("inspect the container", self.container.reload)
        return self.container

    def status(self) -> str:
        return str(self.refresh().status)

    def describe(self) -> dict[str, Any]:
        """Identity for the record: the container and the image it runs."""
        container = self.refresh()
        return {
            "name": container.name,
            "id": self.id,
            "image": container.attrs.get("Config", {}).get("Image"),
            "image_id": container.attrs.get("Image"),
            "engine": resolved_engine(self.engine).get("host") or self.engine.context,
        }

    def pinned(self) -> dict[str, Any]:
        """What a crash-journal entry (a ContainerEntry) names this container by: its engine
        resolved, so that `drills recover` reaches the same one whatever its environment."""
        return {"target": self.name, "engine": resolved_engine(self.engine), "id": self.id}

    def kill(self, signal_name: str) -> None:
        self._call(f"send {signal_name}", self.container.kill, signal=signal_name)

    def send(self, sig: signal.Signals) -> str:
        self.kill(sig.name)
        return f"{sig.name} sent to container {self.name}"

    def pausing(self, called: str) -> Injection:
        status = self.status()
        if status != "running":
            raise StepError(f"{self.name} is {status}, not running: nothing to pause")

        def make() -> str:
            self.pause()
            return f"container {self.name} paused"

        entry = ContainerPause(**(self.pinned() | {"target": called}))
        return Injection(entry, make, self.unpause, f"unpause {called}")

    def resume(self) -> str:
        self.unpause()
        return f"container {self.name} unpaused"

    def partitioning(self, peers: list[str], tag: str, run_id: str) -> Injection:
        from drills.faults.container import partitioning  # the faults import the targets

        return partitioning(self, peers, tag, run_id)

    def stopping(self, called: str, timeout_s: float) -> Injection:
        from drills.faults.container import ContainerStopped

        status = self.status()
        if status not in ("running", "paused"):
            raise StepError(f"{self.name} is {status}: nothing to stop")

        def make() -> str:
            self.stop(max(0, round(timeout_s)))
            return f"container {called} stopped"

        entry = ContainerStopped(**(self.pinned() | {"target": called}))
        return Injection(entry, make, self.start, f"start {called}")

    def network_mode(self) -> str:
        return str(self.refresh().attrs.get("HostConfig", {}).get("NetworkMode") or "default")

    def pause(self) -> None:
        self._call("pause", self.container.pause)

    def unpause(self) -> None:
        if self.status() == "paused":
            self._call("unpause", self.container.unpause)

    def stop(self, timeout_s: int | None = None) -> None:
        timeout = self.stop_timeout_s if timeout_s is None else timeout_s
        self._call("stop", self.container.stop, timeout=timeout)

    def start(self) -> None:
        if self.status() != "running":
            self._call("start", self.container.start)

    def restart(self) -> None:
        self._call("restart", self.container.restart, timeout=self.stop_timeout_s)

    def networks(self) -> dict[str, dict[str, Any]]:
        found = self.refresh().attrs.get("NetworkSettings", {}).get("Networks") or {}
        return dict(found)

    def addresses(self) -> list[str]:
        return [n["IPAddress"] for n in self.networks().values() if n.get("IPAddress")]

    def network_settings(self, network: str) -> dict[str, Any]:
        """The container's settings on `network`; TargetError if it is not attached."""
        settings = self.networks().get(network)
        if settings is None:
            attached = ", ".join(self.networks()) or "none"
            raise TargetError(f"{self.name} is not on network {network!r} (networks: {attached})")
        return dict(settings)

    def disconnect(self, network: str) -> None:
        net = self._call("find its network", self.client.networks.get, network)
        self._call(f"disconnect from {network}", net.disconnect, self.container, force=True)

    def connect(self, network: str, aliases: list[str] | None = None) -> None:
        if network in self.networks():
            return
        net = self._call("find its network", self.client.networks.get, network)
        self._call(f"connect to {network}", net.connect, self.container, aliases=aliases or None)

    def wait_status(self, wanted: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.status() != wanted:
            if time.monotonic() > deadline:
                raise EngineError(f"{self.name} is not {wanted} after {timeout_s:g}s")
            time.sleep(0.05)


class PostgresContainer(ContainerTarget):
    """A container running a PostgreSQL server reachable through `dsn`: it can be promoted."""

    def promote(self, timeout_s: float) -> None:
        if not self.dsn:
            raise TargetError(f"{self.name}: no dsn to promote it through")
        promote_postgres(self.dsn, timeout_s, self.name)


def container_target_class(dsn: str | None) -> type[ContainerTarget]:
    """The one place a container target's abilities follow from its spec."""
    return PostgresContainer if dsn else ContainerTarget


CONTAINER: Ability[ContainerTarget] = Ability(
    ContainerTarget,
    "is not a container",
    "select one with `container:`, `labels:` or `compose:`, or use a docker lab's node",
)
