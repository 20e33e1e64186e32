"""`docker-postgres-pair`: site A primary and site B streaming standby, each in a container.

Both run on a network of their own, with PostgreSQL's port published on 127.0.0.1 for the
probes. Any image with PostgreSQL server binaries on its PATH and a `postgres` user works: the
official `postgres` image (the default), or the one `python -m drills.containers.local_image`
builds from this host. The lab runs its own start script (initdb, or pg_basebackup -R for the
standby) as user `postgres`, so nothing depends on an image's entrypoint. Every connection needs
the superuser's password made for the run (drills.labs.docker_scripts); the harness's clients
read it from a password file in a private directory of the lab on this host. Extra containers the
drill needs (`containers:`) join the same network. Every container and the network carry the
label `org.drills.lab`; stop removes them all.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

import docker
import docker.errors
import psycopg
from docker.models.containers import Container
from pydantic import Field

from drills.abilities import NodeSpec
from drills.containers.engine import address, connect, engine_error, resolved_engine
from drills.containers.iptables import remove_helpers
from drills.containers.target import ContainerTarget, PostgresContainer
from drills.errors import LabError
from drills.labs.base import LABS, Lab, LabConfig, LabHandle
from drills.labs.credentials import dsn, passfile_param, password, pgpass, write_private
from drills.labs.docker_containers import (
    LAB_LABEL,
    RUN_LABEL,
    ContainerSpec,
    DockerLabCreated,
    remove_lab,
    volumes,
)
from drills.labs.docker_scripts import (
    PASSWORD_ENV,
    primary_script,
    server_script,
    standby_script,
)
from drills.labs.lab_process import LabDirectory
from drills.labs.postgres_pair import Settings, wait_streaming

IMAGE_ENV = "DRILLS_POSTGRES_IMAGE"
DEFAULT_IMAGE = "postgres:16"
EXAMPLE_PASSFILE = Path("/tmp/drills-lab-example/pgpass")
READY_TIMEOUT_S = 60.0


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
        default_factory=dict, description="more containers on the drill's network (lab nodes)"
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
        self.client: docker.DockerClient | None = None
        self.lab_id = ""
        self.secret = password()
        self.root = Path()  # on this host: the password file of the harness's clients
        self.dsns: dict[str, str] = {}

    # -- start -------------------------------------------------------------------------------

    def start(self) -> LabHandle:
        self.client = connect(self.engine)
        image = self._image(self.cfg.image_name())
        self.lab_id = f"drills-{uuid.uuid4().hex[:8]}"
        self.journal(DockerLabCreated(engine=resolved_engine(self.engine), label=self.lab_id))
        self.root = Path(tempfile.gettempdir()) / f"drills-lab-{self.lab_id}"
        self.journal(LabDirectory(path=str(self.root), processes=False))
        try:
            self.root.mkdir(mode=0o700)
            write_private(self.passfile, pgpass(self.secret))
            return self._start(image)
        except BaseException:
            self.stop()
            raise

    def _image(self, name: str) -> Any:
        assert self.client is not None
        try:
            return self.client.images.get(name)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException as exc:
            raise engine_error(f"cannot inspect image {name}", exc) from exc
        if not self.cfg.pull:
            raise LabError(f"image {name} is not on the engine (and lab.pull is false)")
        self.progress(f"lab: pulling {name}")
        try:
            return self.client.images.pull(name)
        except docker.errors.DockerException as exc:
            reason = " ".join(str(exc).split())[:200]
            raise LabError(
                f"image {name} is not on the engine and could not be pulled ({reason}); without "
                "a registry, build one from this host's PostgreSQL with `python -m "
                f"drills.containers.local_image` and set lab.image or {IMAGE_ENV} to "
                "drills/postgres:local"
            ) from exc

    @property
    def passfile(self) -> Path:
        return self.root / "pgpass"

    def _dsn(self, port: int) -> str:
        return dsn(port, self.passfile)

    def _labels(self) -> dict[str, str]:
        return {LAB_LABEL: self.lab_id, RUN_LABEL: self.run_id or "unknown"}

    def _run(self, name: str, **kwargs: Any) -> Container:
        assert self.client is not None
        try:
            return self.client.containers.run(
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
            ports={"5432/tcp": ("127.0.0.1", None)},
        )

    def _start(self, image: Any) -> LabHandle:
        assert self.client is not None
        try:
            network = self.client.networks.create(
                self.lab_id, driver="bridge", labels=self._labels()
            )
        except docker.errors.DockerException as exc:
            raise engine_error("lab: cannot create its network", exc) from exc
        a, a_port = self._start_primary(image)
        b, b_port = self._start_standby(image, a, a_port)
        extras = {name: self._extra(name, spec) for name, spec in self.cfg.containers.items()}
        network.reload()
        config = network.attrs.get("IPAM", {}).get("Config") or [{}]
        # Each node's target is of the class its NodeSpec declares: validation relied on it.
        nodes = self.nodes_for(self.cfg)
        dsns = self.dsns = {"a": self._dsn(a_port), "b": self._dsn(b_port)}
        targets = {
            name: nodes[name].target(name, self.client, c, dsns.get(name), engine=self.engine)
            for name, c in ({"a": a, "b": b} | extras).items()
        }
        variables = {
            "dsn": f"host=127.0.0.1,127.0.0.1 port={a_port},{b_port} user=postgres "
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
                f"{node}.host": "127.0.0.1",
                f"{node}.port": str(port),
                f"{node}.container": str(target.container.name),
                f"{node}.address": (target.addresses() or [""])[0],
            }
        facts = self._facts(image, a_port, targets)
        return LabHandle(variables=variables, targets=dict(targets), facts=facts)

    def _start_primary(self, image: Any) -> tuple[Container, int]:
        self.progress(
            f"lab: site A primary in a container ({self.cfg.image_name()}) on network {self.lab_id}"
        )
        a = self._server("a", image, primary_script(), primary=True)
        a_port = self._published(a)
        self._wait_ready(a, a_port)
        return a, a_port

    def _start_standby(self, image: Any, a: Container, a_port: int) -> tuple[Container, int]:
        self.progress("lab: site B standby: base backup from A")
        b = self._server("b", image, standby_script(str(a.name)), primary=False)
        b_port = self._published(b)
        self._wait_ready(b, b_port)
        self._wait_streaming(a_port)
        self.progress(
            f"lab: site B standby streaming ({self._mode()}); published on 127.0.0.1:{a_port} "
            f"(A), 127.0.0.1:{b_port} (B)"
        )
        return b, b_port

    def _mode(self) -> str:
        return "synchronous" if self.cfg.synchronous else "asynchronous"

    def _facts(
        self, image: Any, a_port: int, targets: dict[str, ContainerTarget]
    ) -> dict[str, Any]:
        with psycopg.connect(self._dsn(a_port), connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        host, _ = address(self.engine)
        return {
            "kind": "docker-postgres-pair",
            "backend": "docker",
            "engine": host or "local (unix:///var/run/docker.sock)",
            "image": self.cfg.image_name(),
            "image_id": image.id,
            "postgres": f"PostgreSQL {row[0]}" if row else "",
            "replication": self._mode(),
            "network": self.lab_id,
            "containers": {name: t.describe() for name, t in targets.items()},
        }

    def _extra(self, name: str, spec: ContainerSpec) -> Container:
        self.progress(f"lab: container {name} ({spec.image})")
        self._image(spec.image)
        return self._run(name, **spec.run_arguments())

    def _published(self, container: Container) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            container.reload()
            bindings = (container.ports or {}).get("5432/tcp") or []
            if bindings:
                return int(bindings[0]["HostPort"])
            if container.status == "exited":
                break
            time.sleep(0.05)
        raise LabError(f"{container.name}: port 5432 not published: {self._logs(container)}")

    def _logs(self, container: Container) -> str:
        try:
            text = container.logs(tail=3).decode(errors="replace")
        except docker.errors.DockerException:
            return "(no logs)"
        return " | ".join(text.strip().splitlines()) or "(no output)"

    def _wait_ready(self, container: Container, port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self._dsn(port), connect_timeout=2):
                    return
            except psycopg.Error as exc:
                last = " ".join(str(exc).split())
            container.reload()
            if container.status in ("exited", "dead"):
                raise LabError(f"{container.name} exited: {self._logs(container)}")
            time.sleep(0.1)
        raise LabError(f"{container.name}: not ready after {READY_TIMEOUT_S:g}s: {last}")

    def _wait_streaming(self, port: int) -> None:
        wait_streaming(self._dsn(port), self.cfg.synchronous, READY_TIMEOUT_S)

    # -- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = Path()
        if self.client is None or not self.lab_id:
            return
        try:
            remove_lab(self.client, self.lab_id)
            if self.run_id:
                remove_helpers(self.client, self.run_id)
        except docker.errors.DockerException as exc:
            raise engine_error(f"lab: could not remove {self.lab_id}", exc) from exc
        self.lab_id = ""

    def keep(self) -> str:
        lab_id, self.lab_id = self.lab_id, ""
        root, self.root = self.root, Path()
        commands = "; ".join(f"{node}: psql {shlex.quote(d)}" for node, d in self.dsns.items())
        return (
            f"lab kept: containers and network labelled {LAB_LABEL}={lab_id}; connect with the "
            f"password file {root / 'pgpass'} (readable by its owner only): {commands}; "
            "remove them with: "
            f"docker rm -f $(docker ps -aq --filter label={LAB_LABEL}={lab_id}); "
            f"docker network rm {lab_id}; rm -rf {root}"
        )
