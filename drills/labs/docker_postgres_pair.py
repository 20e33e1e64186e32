"""`docker-postgres-pair`: site A primary and site B streaming standby, each in a container.

Both run on a network of their own, with PostgreSQL's port published on 127.0.0.1 for the
probes. Any image with PostgreSQL server binaries on its PATH and a `postgres` user works: the
official `postgres` image (the default), or the one `python -m drills.containers.local_image`
builds from this host. The lab runs its own start script (initdb, or pg_basebackup -R for the
standby) as user `postgres`, so nothing depends on an image's entrypoint. Every connection needs
the superuser's password made for the run (drills.labs.docker_scripts); the harness's clients
read it from a password file in a private directory of the lab on this host. Extra containers the
drill needs (`containers:`) join site A's network. Every container and network carry the
label `org.drills.lab`; stop removes them all. `sites:` may put each site on an engine of its own
(drills.labs.docker_sites).
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

import docker
import docker.errors
import psycopg
from docker.models.containers import Container
from pydantic import Field

from drills.abilities import NodeSpec
from drills.containers.engine import EngineSpec, engine_error, resolved_engine
from drills.containers.iptables import remove_helpers
from drills.containers.target import ContainerTarget, PostgresContainer
from drills.errors import EngineError
from drills.labs.base import LABS, Lab, LabConfig, LabHandle
from drills.labs.credentials import dsn, passfile_param, password, pgpass, write_private
from drills.labs.docker_containers import (
    LAB_LABEL,
    READY_TIMEOUT_S,
    RUN_LABEL,
    ContainerSpec,
    DockerLabCreated,
    ensure_image,
    published_port,
    remove_lab,
    volumes,
    wait_ready,
)
from drills.labs.docker_scripts import (
    PASSWORD_ENV,
    primary_script,
    server_script,
    standby_script,
)
from drills.labs.docker_sites import (
    SITES,
    Site,
    Sites,
    SiteSpec,
    distinct,
    engine_key,
    one_engine,
    place,
    removal,
)
from drills.labs.lab_process import LabDirectory
from drills.labs.postgres_pair import Settings, wait_streaming

IMAGE_ENV = "DRILLS_POSTGRES_IMAGE"
DEFAULT_IMAGE = "postgres:16"
EXAMPLE_PASSFILE = Path("/tmp/drills-lab-example/pgpass")
PULL_HINT = (
    "; without a registry, build one from this host's PostgreSQL with `python -m "
    f"drills.containers.local_image` and set lab.image or {IMAGE_ENV} to drills/postgres:local"
)


class DockerPostgresPairConfig(LabConfig):
    kind: Literal["docker-postgres-pair"]
    image: str | None = Field(
        None, description=f"PostgreSQL image (default: ${IMAGE_ENV}, else {DEFAULT_IMAGE})"
    )
    pull: bool = Field(True, description="pull the image when the engine does not have it")
    synchronous: bool = Field(False, description="synchronous replication to the standby")
    environment: dict[str, str] = Field(default_factory=dict, description="for both servers")
    volumes: list[str] = Field(default_factory=list, description="for both servers")
    settings: Settings = Field(
        default_factory=dict, description="extra postgresql.conf settings for both servers"
    )
    containers: dict[str, ContainerSpec] = Field(
        default_factory=dict, description="more containers on site A's network (lab nodes)"
    )
    sites: Sites = Field(
        default_factory=Sites,
        description="where each site runs: its engine, the address its port is published on",
    )

    def image_name(self) -> str:
        return self.image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


@LABS.register("docker-postgres-pair")
class DockerPostgresPairLab(Lab):
    Config = DockerPostgresPairConfig
    nodes: ClassVar[dict[str, NodeSpec]] = {
        "a": NodeSpec("site A's container: the primary when the drill starts", PostgresContainer),
        "b": NodeSpec(
            "site B's container: a streaming standby of A (pg_basebackup -R)", PostgresContainer
        ),
    }
    variables: ClassVar[dict[str, str]] = {
        "dsn": "host=127.0.0.1,127.0.0.1 port=32768,32769 user=postgres dbname=postgres "
        f"target_session_attrs=read-write passfile={EXAMPLE_PASSFILE}",
        "a.dsn": dsn(32768, EXAMPLE_PASSFILE),
        "b.dsn": dsn(32769, EXAMPLE_PASSFILE),
        "passfile": str(EXAMPLE_PASSFILE),
        "a.host": "127.0.0.1",
        "b.host": "127.0.0.1",
        "a.port": "32768",
        "b.port": "32769",
        "a.container": "drills-0123abcd-a",
        "b.container": "drills-0123abcd-b",
        "a.address": "172.18.0.2",
        "b.address": "172.18.0.3",
        "network": "drills-0123abcd",
        "gateway": "172.18.0.1",
    }

    @classmethod
    def nodes_for(cls, config: LabConfig) -> dict[str, NodeSpec]:
        assert isinstance(config, DockerPostgresPairConfig)
        extra = {
            name: NodeSpec(f"container {name} ({spec.image})", ContainerTarget)
            for name, spec in config.containers.items()
        }
        return {**cls.nodes, **extra}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.config, DockerPostgresPairConfig)
        self.cfg = self.config
        self.placed: dict[str, Site] = {}  # placed on their engines, once started
        self.lab_id = ""
        self.secret = password()
        self.root = Path()  # on this host: the password file of the harness's clients
        self.dsns: dict[str, str] = {}

    # -- start -------------------------------------------------------------------------------

    def start(self) -> LabHandle:
        sites = place(self.cfg.sites, self.engine, self.engines)
        images = {
            site.key: self._image(site.client, self.cfg.image_name()) for site in sites.values()
        }
        self.lab_id = f"drills-{uuid.uuid4().hex[:8]}"
        for site in distinct(sites):
            self.journal(DockerLabCreated(engine=resolved_engine(site.engine), label=self.lab_id))
        self.placed = sites
        self.root = Path(tempfile.gettempdir()) / f"drills-lab-{self.lab_id}"
        self.journal(LabDirectory(path=str(self.root), processes=False))
        try:
            self.root.mkdir(mode=0o700)
            hosts = {site.spec.reached_at() for site in sites.values()}
            write_private(
                self.passfile, "".join(pgpass(self.secret, host=h) for h in sorted(hosts))
            )
            return self._start({node: images[site.key] for node, site in sites.items()})
        except BaseException:
            self.stop()
            raise

    def _image(self, client: docker.DockerClient, name: str) -> Any:
        return ensure_image(client, name, self.cfg.pull, self.progress, PULL_HINT)

    @property
    def passfile(self) -> Path:
        return self.root / "pgpass"

    def _dsn(self, port: int, host: str = "127.0.0.1") -> str:
        return dsn(port, self.passfile, host)

    def _labels(self) -> dict[str, str]:
        return {LAB_LABEL: self.lab_id, RUN_LABEL: self.run_id or "unknown"}

    def _run(self, name: str, **kwargs: Any) -> Container:
        """Container `name` on its site's engine (site A's for extra containers)."""
        client = self.placed[name if name in SITES else "a"].client
        try:
            return client.containers.run(
                name=f"{self.lab_id}-{name}",
                network=self.lab_id,
                labels=self._labels(),
                detach=True,
                **kwargs,
            )
        except docker.errors.DockerException as exc:
            raise engine_error(f"lab: cannot start container {name}", exc) from exc

    def _settings(self, primary: bool) -> list[str]:
        settings: dict[str, object] = {
            "listen_addresses": "*",
            "unix_socket_directories": "/tmp",
            "max_connections": 60,
            "shared_buffers": "32MB",
            "wal_level": "replica",
            "max_wal_senders": 5,
            "wal_keep_size": "128MB",
            "hot_standby": "on",
            "wal_receiver_status_interval": "1s",
            "log_min_messages": "warning",
        }
        if primary and self.cfg.synchronous:
            settings["synchronous_standby_names"] = "*"
        settings |= self.cfg.settings
        return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]

    def _server(self, name: str, image: Any, prepare: list[str], primary: bool) -> Container:
        return self._run(
            name,
            image=image.id,
            entrypoint=["/bin/sh", "-c"],
            command=[server_script(prepare, self._settings(primary))],
            user="postgres",
            environment=self.cfg.environment | {PASSWORD_ENV: self.secret},
            volumes=volumes(self.cfg.volumes),
            ports={"5432/tcp": (self._site(name).publish, None)},
        )

    def _site(self, node: str) -> SiteSpec:
        return self.cfg.sites.of(node)

    def _networks(self) -> list[Any]:
        networks = []
        for site in distinct(self.placed):
            try:
                networks.append(
                    site.client.networks.create(self.lab_id, driver="bridge", labels=self._labels())
                )
            except docker.errors.DockerException as exc:
                raise engine_error(f"lab: cannot create its network on {site.key}", exc) from exc
        return networks

    def _start(self, images: dict[str, Any]) -> LabHandle:
        network = self._networks()[0]
        a, a_port = self._start_primary(images["a"])
        b, b_port = self._start_standby(images["b"], a, a_port)
        extras = {name: self._extra(name, spec) for name, spec in self.cfg.containers.items()}
        network.reload()
        config = network.attrs.get("IPAM", {}).get("Config") or [{}]
        # Each node's target is of the class its NodeSpec declares: validation relied on it.
        nodes = self.nodes_for(self.cfg)
        hosts = {node: self._site(node).reached_at() for node in SITES}
        dsns = self.dsns = {
            "a": self._dsn(a_port, hosts["a"]),
            "b": self._dsn(b_port, hosts["b"]),
        }
        targets = {
            name: nodes[name].target(
                name,
                self.placed[site].client,
                c,
                dsns.get(name),
                engine=self.placed[site].engine,
            )
            for name, c in ({"a": a, "b": b} | extras).items()
            for site in [name if name in SITES else "a"]
        }
        variables = {
            "dsn": f"host={hosts['a']},{hosts['b']} port={a_port},{b_port} user=postgres "
            "dbname=postgres target_session_attrs=read-write "
            f"{passfile_param(self.passfile)}",
            "passfile": str(self.passfile),
            "network": self.lab_id,
            "gateway": str(config[0].get("Gateway", "")),
        }
        for node, port in (("a", a_port), ("b", b_port)):
            target = targets[node]
            variables |= {
                f"{node}.dsn": dsns[node],
                f"{node}.host": hosts[node],
                f"{node}.port": str(port),
                f"{node}.container": str(target.container.name),
                f"{node}.address": (target.addresses() or [""])[0],
            }
        facts = self._facts(images["a"], dsns["a"], targets)
        return LabHandle(variables=variables, targets=dict(targets), facts=facts)

    def _start_primary(self, image: Any) -> tuple[Container, int]:
        self.progress(
            f"lab: site A primary in a container ({self.cfg.image_name()}) on network {self.lab_id}"
        )
        a = self._server("a", image, primary_script(), primary=True)
        a_port = published_port(a)
        wait_ready(a, self._dsn(a_port, self._site("a").reached_at()))
        return a, a_port

    def _start_standby(self, image: Any, a: Container, a_port: int) -> tuple[Container, int]:
        self.progress("lab: site B standby: base backup from A")
        a_at = self._site("a").reached_at()
        # On one engine B reaches A by name on their network, else at A's published port.
        source = (str(a.name), 5432) if one_engine(self.placed) else (a_at, a_port)
        b = self._server("b", image, standby_script(*source), primary=False)
        b_port = published_port(b)
        b_at = self._site("b").reached_at()
        wait_ready(b, self._dsn(b_port, b_at))
        wait_streaming(self._dsn(a_port, a_at), self.cfg.synchronous, READY_TIMEOUT_S)
        self.progress(
            f"lab: site B standby streaming ({self._mode()}); published on {a_at}:{a_port} "
            f"(A), {b_at}:{b_port} (B)"
        )
        return b, b_port

    def _mode(self) -> str:
        return "synchronous" if self.cfg.synchronous else "asynchronous"

    def _facts(self, image: Any, a_dsn: str, targets: dict[str, ContainerTarget]) -> dict[str, Any]:
        with psycopg.connect(a_dsn, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        engines = {node: site.key for node, site in self.placed.items()}
        return {
            "kind": "docker-postgres-pair",
            "backend": "docker",
            "engine": engines["a"] if len(set(engines.values())) == 1 else engines,
            "image": self.cfg.image_name(),
            "image_id": image.id,
            "postgres": f"PostgreSQL {row[0]}" if row else "",
            "replication": self._mode(),
            "network": self.lab_id,
            "containers": {name: t.describe() for name, t in targets.items()},
        }

    def _extra(self, name: str, spec: ContainerSpec) -> Container:
        self.progress(f"lab: container {name} ({spec.image})")
        ensure_image(self.placed["a"].client, spec.image, self.cfg.pull, self.progress, "")
        return self._run(name, **spec.run_arguments())

    # -- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = Path()
        if not self.placed or not self.lab_id:
            return
        failed = []
        for site in distinct(self.placed):
            try:
                remove_lab(site.client, self.lab_id)
                if self.run_id:
                    remove_helpers(site.client, self.run_id)
            except docker.errors.DockerException as exc:  # the other engine's is still removed
                failed.append(str(engine_error(f"from {site.key}", exc)))
        if failed:
            raise EngineError(f"lab: could not remove {self.lab_id} {'; '.join(failed)}")
        self.lab_id = ""

    def keep(self) -> str:
        lab_id, self.lab_id = self.lab_id, ""
        root, self.root = self.root, Path()
        commands = "; ".join(f"{node}: psql {shlex.quote(d)}" for node, d in self.dsns.items())
        engines = [site.key for site in distinct(self.placed)] or [""]
        named = len(engines) > 1 or engines[0] not in ("", engine_key(EngineSpec.default()))
        removing = "; ".join(removal(engine, lab_id, LAB_LABEL, named) for engine in engines)
        return (
            f"lab kept: containers and networks labelled {LAB_LABEL}={lab_id}; connect with the "
            f"password file {root / 'pgpass'} (readable by its owner only): {commands}; "
            f"remove them with: {removing}; rm -rf {root}"
        )
