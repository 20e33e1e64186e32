"""Where each site of a `docker-postgres-pair` lab runs: its Docker engine (a name from the
scenario's `engines`), the address of that engine's host its server's port is published on, and
the address the harness and the other site reach that port at.

With both sites on one engine they share a network and the standby reaches the primary by its
container name, as before. On two engines each site gets a network of its own on its engine,
and the standby streams from the primary's published address and port: the engine of site B
must be able to reach that address (in two data centres, the link between them).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass

import docker
from pydantic import Field, field_validator

from drills.containers.engine import EngineSpec, connect, resolved_engine
from drills.model import StrictModel

SITES = ("a", "b")
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


class SiteSpec(StrictModel):
    engine: str | None = Field(
        None, description="a name from the scenario's `engines` (default: its `engine`)"
    )
    publish: str = Field(
        "127.0.0.1", description="address of the engine's host to publish PostgreSQL's port on"
    )
    address: str | None = Field(
        None,
        description="address the harness and the other site reach that port at (default: "
        "`publish`, or 127.0.0.1 when it is 0.0.0.0)",
    )

    @field_validator("publish")
    @classmethod
    def _ip(cls, value: str) -> str:
        return str(ipaddress.ip_address(value))  # ValueError names the value

    @field_validator("address")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            if HOST_NAME.match(value):
                return value
        raise ValueError(f"{value!r} is neither an IP address nor a host name")

    def reached_at(self) -> str:
        if self.address:
            return self.address
        return ANY_ADDRESS.get(self.publish, self.publish)

    def loopback(self) -> bool:
        at = self.reached_at()
        try:
            return ipaddress.ip_address(at).is_loopback
        except ValueError:
            return at == "localhost"


def _default() -> SiteSpec:
    return SiteSpec.model_validate({})


class Sites(StrictModel):
    a: SiteSpec = Field(
        default_factory=lambda: SiteSpec.model_validate({}), description="site A: the primary"
    )
    b: SiteSpec = Field(
        default_factory=lambda: SiteSpec.model_validate({}), description="site B: the standby"
    )

    def of(self, node: str) -> SiteSpec:
        return self.a if node == "a" else self.b


@dataclass
class Site:
    node: str
    spec: SiteSpec
    engine: EngineSpec
    client: docker.DockerClient

    @property
    def key(self) -> str:
        return engine_key(self.engine)


def engine_key(engine: EngineSpec) -> str:
    """What tells two engines apart: the address they resolve to, or the context's name."""
    return str(resolved_engine(engine).get("host") or engine.context)


def site_engine(spec: SiteSpec, default: EngineSpec, engines: dict[str, EngineSpec]) -> EngineSpec:
    return engines[spec.engine] if spec.engine is not None else default


def place(sites: Sites, default: EngineSpec, engines: dict[str, EngineSpec]) -> dict[str, Site]:
    """Each site with a client of its engine (one client per engine, each checked by a ping);
    EngineError when one cannot be reached."""
    clients: dict[str, docker.DockerClient] = {}
    placed = {}
    for node in SITES:
        spec = sites.of(node)
        engine = site_engine(spec, default, engines)
        key = engine_key(engine)
        if key not in clients:
            clients[key] = connect(engine)
        placed[node] = Site(node, spec, engine, clients[key])
    return placed


def one_engine(sites: dict[str, Site]) -> bool:
    return len({site.key for site in sites.values()}) == 1


def distinct(sites: dict[str, Site]) -> list[Site]:
    """One site per engine: the first on each."""
    seen: dict[str, Site] = {}
    for site in sites.values():
        seen.setdefault(site.key, site)
    return list(seen.values())


def removal(engine: str, lab_id: str, label: str, named: bool) -> str:
    """Commands that remove a kept lab's containers and network from one engine."""
    where = ("-H " if "://" in engine else "--context ") + shlex.quote(engine)
    docker_ = f"docker {where}" if named else "docker"
    return (
        f"{docker_} rm -f $({docker_} ps -aq --filter label={label}={lab_id}); "
        f"{docker_} network rm {lab_id}"
    )
