"""`postgres-pair`: site A primary and site B streaming standby on loopback.

Each server runs in a fresh temporary directory on a free port, as an unprivileged OS user
when the harness runs as root (initdb refuses root). Stop kills every server process and
removes the directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import psycopg
from pydantic import BeforeValidator, Field

from drills.abilities import NodeSpec
from drills.backup.lab import BackupConfig, LabBackups
from drills.backup.pgbackrest import Repository, Server, archive_current_wal
from drills.errors import LabError
from drills.history import Event
from drills.labs.base import LABS, EventHook, Lab, LabConfig, LabHandle, Progress
from drills.labs.lab_process import (
    READY_TIMEOUT_S,
    LabUser,
    PostgresNode,
    free_port,
    lab_directory,
    own_conf,
    spawn,
)
from drills.network.control import LinkEnds, Network
from drills.network.proxy import Proxy

LAB_PREFIX = "drills-lab-"
SERVER_BINARIES = ("initdb", "postgres", "pg_basebackup")
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, postgres, pg_basebackup) not found: install them "
    "(Debian/Ubuntu: apt-get install postgresql) or set lab.bin_dir"
)


def _scalar(value: object) -> object:
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"a setting is a string, number or boolean; got {type(value).__name__}")
    return value


Settings = dict[str, Annotated[str | int | float | bool, BeforeValidator(_scalar)]]


class PostgresPairConfig(LabConfig):
    kind: Literal["postgres-pair"]
    synchronous: bool = Field(False, description="synchronous replication to the standby")
    proxy: bool = Field(
        True, description="route clients and replication through the fault proxy (links)"
    )
    bin_dir: str | None = Field(None, description="directory with initdb, postgres...")
    os_user: str = Field("postgres", description="OS user the servers run as under root")
    settings: Settings = Field(
        default_factory=dict, description="extra postgresql.conf settings for both servers"
    )
    backup: BackupConfig | None = Field(
        None, description="WAL archive and pgBackRest repository in the lab (see docs/restore.md)"
    )


def find_bin_dir(configured: str | None) -> Path:
    candidates: list[Path] = []
    if configured:
        candidates.append(Path(configured))
    else:
        versions = glob.glob("/usr/lib/postgresql/*/bin")
        candidates += sorted(
            (Path(v) for v in versions), key=lambda p: int(p.parent.name), reverse=True
        )
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).parent)
    for directory in candidates:
        if all((directory / name).is_file() for name in SERVER_BINARIES):
            return directory
    raise LabError(INSTALL_HINT)


def wait_streaming(primary_dsn: str, synchronous: bool, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until the primary has a streaming standby (a synchronous one once it has reported a
    flush position)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with psycopg.connect(primary_dsn, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
                " AND (sync_state = 'sync' OR NOT %s)",
                (synchronous,),
            ).fetchone()
        if row and int(str(row[0])) > 0:
            return
        time.sleep(0.05)
    raise LabError(f"site B did not start streaming within {timeout_s:g}s")


@LABS.register("postgres-pair")
class PostgresPairLab(Lab):
    Config = PostgresPairConfig
    nodes: ClassVar[dict[str, NodeSpec]] = {
        "a": NodeSpec("site A: the primary when the drill starts", PostgresNode),
        "b": NodeSpec("site B: a streaming standby of A (pg_basebackup -R)", PostgresNode),
    }
    LINKS: ClassVar[dict[str, LinkEnds]] = {
        "clients-a": LinkEnds("clients", "a"),
        "clients-b": LinkEnds("clients", "b"),
        "replication": LinkEnds("b", "a"),  # the standby connects to the primary
    }
    variables: ClassVar[dict[str, str]] = {
        "dsn": "host=127.0.0.1,127.0.0.1 port=6432,6433 user=postgres dbname=postgres "
        "target_session_attrs=read-write",
        "a.dsn": "host=127.0.0.1 port=6432 user=postgres dbname=postgres",
        "b.dsn": "host=127.0.0.1 port=6433 user=postgres dbname=postgres",
        "a.direct_dsn": "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        "b.direct_dsn": "host=127.0.0.1 port=5433 user=postgres dbname=postgres",
        "a.host": "127.0.0.1",
        "b.host": "127.0.0.1",
        "a.port": "5432",
        "b.port": "5433",
        "a.client_port": "6432",
        "b.client_port": "6433",
        "dir": "/tmp/drills-lab-example",
    }

    @classmethod
    def links_for(cls, config: LabConfig) -> dict[str, LinkEnds]:
        assert isinstance(config, PostgresPairConfig)
        return dict(cls.LINKS) if config.proxy else {}

    def __init__(
        self, config: LabConfig, progress: Progress, events: EventHook | None = None
    ) -> None:
        super().__init__(config, progress, events)
        assert isinstance(config, PostgresPairConfig)
        self.cfg = config
        self.root = Path()
        self.bin = Path()
        self.user: LabUser | None = None
        self.servers: list[PostgresNode] = []
        self.proxy: Proxy | None = None
        self.link_ports: dict[str, dict[str, Any]] = {}
        self.backups: LabBackups | None = None
        self.backup_facts: dict[str, object] = {}
        self._created = False

    @property
    def repository(self) -> Repository | None:
        return self.backups.repository if self.backups else None

    def popen(self, argv: list[str], log: Any, as_lab_user: bool = True) -> subprocess.Popen[bytes]:
        return spawn(argv, log, self.user if as_lab_user else None, self.root)

    def run(self, argv: list[str], what: str, timeout_s: float = 120) -> None:
        user = self.user
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            user=user.uid if user else None,
            group=user.gid if user else None,
            extra_groups=[] if user else None,
            cwd=self.root,
            timeout=timeout_s,
        )
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise LabError(f"{what} failed ({result.returncode}): {tail}")

    def _resolve_user(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam(self.cfg.os_user)
        except KeyError:
            raise LabError(
                f"running as root, the servers need an unprivileged OS user and "
                f"{self.cfg.os_user!r} does not exist (create it, or set lab.os_user)"
            ) from None
        self.user = LabUser(entry.pw_uid, entry.pw_gid, entry.pw_name)

    def _check_reachable(self) -> None:
        """Every parent of the lab directory must be searchable by the servers' OS user."""
        assert self.user is not None
        for parent in self.root.parents:
            info = parent.stat()
            if info.st_mode & 0o001 or (info.st_uid == self.user.uid and info.st_mode & 0o100):
                continue
            if info.st_gid == self.user.gid and info.st_mode & 0o010:
                continue
            raise LabError(
                f"{parent} is not searchable by OS user {self.user.name!r}, which runs the "
                f"servers: set TMPDIR to a directory it can reach (e.g. /tmp)"
            )

    def _configure(self, datadir: Path, port: int, primary: bool) -> None:
        settings: dict[str, object] = {
            "cluster_name": "'a'",  # names the server in answers and logs; B overrides it
            "wal_log_hints": "on",  # lets pg_rewind bring a failed primary back as a standby
            "listen_addresses": "'127.0.0.1'",
            "port": port,
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": 60,
            "shared_buffers": "'32MB'",
            "wal_level": "replica",
            "max_wal_senders": 5,
            "wal_keep_size": "'128MB'",
            "hot_standby": "on",
            "wal_receiver_status_interval": "'1s'",
            "log_min_messages": "warning",
        }
        if primary and self.cfg.synchronous:
            settings["synchronous_standby_names"] = "'*'"
        if self.backups is not None:
            settings |= self.backups.settings(Server(datadir, port))
        for key, value in self.cfg.settings.items():
            settings[key] = f"'{value}'" if isinstance(value, str) else value
        lines = [f"{key} = {value}" for key, value in settings.items()]
        with (datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# drills postgres-pair lab\n" + "\n".join(lines) + "\n")

    def start(self) -> LabHandle:
        self.bin = find_bin_dir(self.cfg.bin_dir)
        self._resolve_user()
        # Journalled before it exists: a crash in between leaves nothing unrecorded.
        self.root = Path(tempfile.gettempdir()) / f"{LAB_PREFIX}{uuid.uuid4().hex[:12]}"
        self.journal(lab_directory(self.root, self.bin, self.user))
        self.root.mkdir(mode=0o700)
        self._created = True
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LabHandle:
        if self.user:
            self._check_reachable()
            os.chown(self.root, self.user.uid, self.user.gid)
        self.root.chmod(0o700)
        if self.cfg.backup is not None:
            self.backups = LabBackups(
                self.cfg.backup, self.root, self.user, self.progress, self.events, self.journal
            )
        a = PostgresNode("a", self, self.root / "a", free_port())
        b = PostgresNode("b", self, self.root / "b", free_port())
        self._start_primary(a)
        if self.backups is not None:
            pgbench = self.bin / "pgbench"
            self.backup_facts = self.backups.prepare(
                a.server(), pgbench, lambda argv, what: self.run(argv, what, timeout_s=3600)
            )
        ports, network = self._open_links(a, b)
        self.progress(f"lab: site A primary up on 127.0.0.1:{a.port}; base backup for site B")
        self._start_standby(b, ports["replication"])
        self._wait_streaming(a)
        via = " through the fault proxy" if self.proxy else ""
        self.progress(f"lab: site B standby streaming on 127.0.0.1:{b.port} ({self._mode()}{via})")
        return LabHandle(
            variables=self._variables(a, b, ports),
            targets={"a": a, "b": b},
            facts=self._facts(a, b),
            network=network,
        )

    def _mode(self) -> str:
        return "synchronous" if self.cfg.synchronous else "asynchronous"

    def _start_primary(self, a: PostgresNode) -> None:
        self.progress(f"lab: initdb site A in {self.root}")
        initdb = [str(self.bin / "initdb"), "-D", str(a.datadir), "-U", "postgres"]
        self.run([*initdb, "--auth=trust", "-N", "-E", "UTF8", "--locale=C"], "initdb")
        self._configure(a.datadir, a.port, primary=True)
        self.servers.append(a)
        a.start()

    def _open_links(
        self, a: PostgresNode, b: PostgresNode
    ) -> tuple[dict[str, int], Network | None]:
        """Where clients reach each server and the standby reaches the primary: the proxy's
        links, unless the lab has none."""
        if not self.cfg.proxy:
            return {"a": a.port, "b": b.port, "replication": a.port}, None
        self.proxy = Proxy(self._link_changed)
        self.proxy.start()
        ports = {
            "a": self.add_link("clients-a", a.port),
            "b": self.add_link("clients-b", b.port),
            "replication": self.add_link("replication", a.port),
        }
        return ports, Network(self.proxy, dict(self.LINKS))

    def _start_standby(self, b: PostgresNode, replication_port: int) -> None:
        # Through the replication link: -R then points the standby at the link, not at A.
        self.run(
            [
                str(self.bin / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(replication_port), "-U", "postgres"),
                *("-D", str(b.datadir), "-R", "-X", "stream", "-c", "fast", "-N"),
            ],
            "pg_basebackup",
        )
        own_conf(b)
        self.servers.append(b)
        b.start()

    def _variables(self, a: PostgresNode, b: PostgresNode, ports: dict[str, int]) -> dict[str, str]:
        dsn = (
            f"host=127.0.0.1,127.0.0.1 port={ports['a']},{ports['b']} user=postgres "
            "dbname=postgres target_session_attrs=read-write"
        )
        variables = {"dsn": dsn, "dir": str(self.root)}
        for node in (a, b):
            client_port = ports[node.name]
            variables |= {
                f"{node.name}.dsn": f"host=127.0.0.1 port={client_port} user=postgres "
                "dbname=postgres",
                f"{node.name}.direct_dsn": node.dsn,
                f"{node.name}.host": "127.0.0.1",
                f"{node.name}.port": str(node.port),
                f"{node.name}.client_port": str(client_port),
            }
        return variables

    def _facts(self, a: PostgresNode, b: PostgresNode) -> dict[str, Any]:
        version = subprocess.run(
            [str(self.bin / "postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        return {
            "kind": "postgres-pair",
            "postgres": version,
            "replication": self._mode(),
            "ports": {"a": a.port, "b": b.port},
            "links": self.link_ports,
        } | ({"backup": self.backup_facts} if self.backups else {})

    def before_steps(self) -> None:
        """Every WAL segment archived (the probes' tables too): a restore loses only what the
        drill wrote."""
        if self.backups is not None and self.servers:
            archive_current_wal(self.servers[0].dsn)

    def replication_port(self, standby: str, primary: PostgresNode) -> int:
        """Where `standby` reaches `primary` for streaming: a replication link if the lab has
        one, so that partitions between the sites cut it too."""
        for name, ends in self.LINKS.items():
            wanted = (ends.client, ends.server) == (standby, primary.name)
            if wanted and name.startswith("replication") and name in self.link_ports:
                return int(self.link_ports[name]["port"])
        return primary.port

    def add_link(self, name: str, upstream_port: int) -> int:
        """A proxy link to a loopback port; return the port clients of the link use."""
        assert self.proxy is not None
        port = self.proxy.add_link(name, ("127.0.0.1", upstream_port))
        ends = self.LINKS[name]
        self.link_ports[name] = {"port": port, "client": ends.client, "server": ends.server}
        return port

    def _link_changed(self, link: str, change: str, at_ns: int) -> None:
        if self.events is not None:
            self.events(Event("proxy", link, change, at_ns))

    def _wait_streaming(self, primary: PostgresNode) -> None:
        wait_streaming(primary.dsn, self.cfg.synchronous)

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        for server in reversed(self.servers):
            server.kill_all()
        self.servers = []
        if self._created:
            shutil.rmtree(self.root, ignore_errors=True)
            self._created = False

    def keep(self) -> str:
        ports = ", ".join(f"{s.name}: 127.0.0.1:{s.port}" for s in self.servers)
        pids = " ".join(str(s.proc.pid) for s in self.servers if s.proc and s.proc.poll() is None)
        self.servers = []
        self._created = False
        return (
            f"lab kept in {self.root} ({ports}); remove it with: "
            f"kill -9 {pids or '<no running server>'}; rm -rf {self.root}"
        )
