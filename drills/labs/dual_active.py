"""`dual-active`: two sites behind HAProxy, each serving traffic, over a primary and a standby.

Site A runs an order service and the PostgreSQL primary; site B an order service and a
streaming standby of A. HAProxy (Debian package `haproxy`) balances clients over both services
with health checks. Each service writes through a multi-host DSN that lists its own site's
database first and reaches the other site's through a link, so both sites serve and commit to
whichever database is the primary. Every path between sites and from clients is a link of
drills' fault proxy:

    lb-a, lb-b              HAProxy -> the order service of site A / B   (clients -> a / b)
    a-to-db-b, b-to-db-a    a service -> the other site's database       (a -> b, b -> a)
    replication             standby B -> primary A                       (b -> a)
    replication-b           A -> B, once A has rejoined as B's standby   (a -> b)
    clients-a, clients-b    probes -> database A / B                     (clients -> a / b)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, ClassVar, Literal

import psycopg
from pydantic import Field, field_validator

from drills.abilities import NodeSpec
from drills.durations import CheckInterval
from drills.errors import LabError
from drills.files import write_nofollow
from drills.labs.base import LABS, LabConfig, LabHandle
from drills.labs.credentials import child_env, passfile_param
from drills.labs.lab_process import LabProcess, PostgresNode, spawn
from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab
from drills.network.control import LinkEnds
from drills.network.ports import free_port
from drills.refservice.orders import SCHEMA

READY_TIMEOUT_S = 20.0
HAPROXY_HINT = "HAProxy not found: install it (Debian/Ubuntu: apt-get install haproxy)"


class DualActiveConfig(PostgresPairConfig):
    kind: Literal["dual-active"]  # type: ignore[assignment]
    check_interval: CheckInterval = Field(
        0.2, description="HAProxy health-check interval, e.g. 200ms"
    )
    fall: int = Field(2, ge=1, description="failed checks before a site is taken out")
    rise: int = Field(2, ge=1, description="passed checks before a site is put back")
    haproxy: str | None = Field(None, description="path of the haproxy binary")

    @field_validator("proxy")
    @classmethod
    def _links(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "the dual-active lab's paths between sites are proxy links: keep it true"
            )
        return value


def find_haproxy(configured: str | None) -> str:
    for candidate in (configured, shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise LabError(HAPROXY_HINT)


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ServiceNode(LabProcess):
    """A site's order service (drills.refservice.orders)."""

    as_lab_user = False

    def __init__(self, name: str, lab: PostgresPairLab, site: str, port: int, dsn: str) -> None:
        super().__init__(name, lab, port)
        self.site = site
        self.dsn = dsn

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            *("-m", "drills.refservice.orders"),
            *("--site", self.site, "--listen", f"127.0.0.1:{self.port}", "--dsn", self.dsn),
        ]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"{self.name} exited ({self.proc.returncode}): {self.log_tail()}")
            if http_ok(self.url + "/health"):
                return
            time.sleep(0.05)
        raise LabError(f"{self.name} did not answer on {self.url} in {READY_TIMEOUT_S:g}s")

    def restart(self) -> None:
        self.kill_all()
        self.start()


class BalancerNode(LabProcess):
    """HAProxy in front of both sites."""

    as_lab_user = False

    def __init__(self, lab: DualActiveLab, port: int, config: Path) -> None:
        super().__init__("lb", lab, port)
        self.config = config
        self.binary = find_haproxy(lab.da.haproxy)

    def argv(self) -> list[str]:
        return [self.binary, "-db", "-f", str(self.config)]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"haproxy exited ({self.proc.returncode}): {self.log_tail()}")
            if http_ok(f"http://127.0.0.1:{self.port}/health"):
                return
            time.sleep(0.05)
        raise LabError(f"haproxy did not serve on port {self.port} in {READY_TIMEOUT_S:g}s")

    def restart(self) -> None:
        self.kill_all()
        self.start()


def haproxy_config(port: int, servers: dict[str, int], cfg: DualActiveConfig) -> str:
    lines = [
        "global",
        "    maxconn 512",
        "defaults",
        "    mode http",
        "    timeout connect 500ms",
        "    timeout client 10s",
        "    timeout server 3s",
        "    timeout check 500ms",
        "    retries 2",
        "    option redispatch",  # a request refused by one site is retried on the other
        "frontend orders",
        f"    bind 127.0.0.1:{port}",
        "    default_backend sites",
        "backend sites",
        "    balance roundrobin",
        "    option httpchk GET /health",
        f"    default-server inter {round(cfg.check_interval * 1000)}ms fall {cfg.fall} "
        f"rise {cfg.rise}",
        *(f"    server {site} 127.0.0.1:{p} check" for site, p in servers.items()),
    ]
    return "\n".join(lines) + "\n"


@LABS.register("dual-active")
class DualActiveLab(PostgresPairLab):
    Config = DualActiveConfig  # type: ignore[assignment]
    nodes: ClassVar[dict[str, NodeSpec]] = {
        "a": NodeSpec("site A's database: the primary when the drill starts", PostgresNode),
        "b": NodeSpec("site B's database: a streaming standby of A", PostgresNode),
        "a-service": NodeSpec("site A's order service", ServiceNode),
        "b-service": NodeSpec("site B's order service", ServiceNode),
        "lb": NodeSpec("HAProxy, in front of both services", BalancerNode),
    }
    sites: ClassVar[dict[str, tuple[str, ...]]] = {
        "a": ("a", "a-service"),
        "b": ("b", "b-service"),
    }
    LINKS: ClassVar[dict[str, LinkEnds]] = {
        **PostgresPairLab.LINKS,
        "lb-a": LinkEnds("clients", "a"),
        "lb-b": LinkEnds("clients", "b"),
        "a-to-db-b": LinkEnds("a", "b"),
        "b-to-db-a": LinkEnds("b", "a"),
        "replication-b": LinkEnds("a", "b"),
    }
    variables: ClassVar[dict[str, str]] = {
        **PostgresPairLab.variables,
        "url": "http://127.0.0.1:8080",
        "a.url": "http://127.0.0.1:8081",
        "b.url": "http://127.0.0.1:8082",
    }

    @classmethod
    def links_for(cls, config: LabConfig) -> dict[str, LinkEnds]:
        return dict(cls.LINKS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.config, DualActiveConfig)
        self.da = self.config
        self.services: list[LabProcess] = []

    def start(self) -> LabHandle:
        find_haproxy(self.da.haproxy)  # before anything is made
        return super().start()

    def popen(self, argv: list[str], log: Any, as_lab_user: bool = True) -> subprocess.Popen[bytes]:
        if as_lab_user:
            return super().popen(argv, log, as_lab_user)
        # The services are this harness's own Python: they find drills where it does.
        python_path = {k: v for k, v in os.environ.items() if k == "PYTHONPATH"}
        return spawn(argv, log, None, self.root, child_env(None, **python_path))

    def _start(self) -> LabHandle:
        if not self.da.proxy:
            raise LabError("the dual-active lab needs its links: remove `proxy: false`")
        handle = super()._start()
        a, b = self.servers
        ports = {"a": a.port, "b": b.port}
        cross = {
            "a": self.add_link("a-to-db-b", ports["b"]),
            "b": self.add_link("b-to-db-a", ports["a"]),
        }
        self.add_link("replication-b", ports["b"])
        # The order table exists before either service takes an order (two services creating
        # it at once would collide in the catalog).
        with psycopg.connect(a.dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(SCHEMA)
        services = {}
        for site in ("a", "b"):
            dsn = (
                f"host=127.0.0.1,127.0.0.1 port={ports[site]},{cross[site]} user=postgres "
                "dbname=postgres target_session_attrs=read-write connect_timeout=1 "
                f"{passfile_param(self.passfile)}"
            )
            node = ServiceNode(f"{site}-service", self, site, free_port(), dsn)
            self.services.append(node)
            node.start()
            services[site] = node
        lb_ports = {site: self.add_link(f"lb-{site}", node.port) for site, node in services.items()}
        config = self.root / "haproxy.cfg"
        lb_port = free_port()
        write_nofollow(config, haproxy_config(lb_port, lb_ports, self.da))
        lb = BalancerNode(self, lb_port, config)
        self.services.append(lb)
        lb.start()
        self._wait_both_sites_serve(lb_port)
        self.progress(
            f"lab: HAProxy on 127.0.0.1:{lb_port} over site A and site B services "
            f"(checks every {round(self.da.check_interval * 1000)}ms, fall {self.da.fall}, "
            f"rise {self.da.rise})"
        )
        handle.targets |= {"a-service": services["a"], "b-service": services["b"], "lb": lb}
        handle.variables |= {
            "url": f"http://127.0.0.1:{lb_port}",
            "a.url": services["a"].url,
            "b.url": services["b"].url,
        }
        handle.facts |= {
            "kind": "dual-active",
            "haproxy": {
                "port": lb_port,
                "check_interval_s": self.da.check_interval,
                "fall": self.da.fall,
                "rise": self.da.rise,
            },
            "services": {site: node.port for site, node in services.items()},
            "links": self.link_ports,
        }
        handle.sites = {site: list(members) for site, members in self.sites.items()}
        return handle

    def _wait_both_sites_serve(self, port: int) -> None:
        """Both servers up in HAProxy: answers from each site through the balancer."""
        seen: set[str] = set()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while seen != {"a", "b"} and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                    seen.add(answer.headers.get("X-Drills-Site", ""))
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        if seen != {"a", "b"}:
            raise LabError(f"HAProxy did not serve both sites in {READY_TIMEOUT_S:g}s: {seen}")

    def stop(self) -> None:
        for node in reversed(self.services):
            node.kill_all()
        self.services = []
        super().stop()

    def keep(self) -> str:
        pids = " ".join(str(n.proc.pid) for n in self.services if n.proc and n.proc.poll() is None)
        self.services = []
        return super().keep() + (f"; services and HAProxy: kill {pids}" if pids else "")
