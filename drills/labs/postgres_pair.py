"""`postgres-pair`: site A primary and site B streaming standby on loopback.

Each server runs in a fresh temporary directory on a free port, as an unprivileged OS user
when the harness runs as root (initdb refuses root). Every connection needs the superuser's
password made for the run (drills.labs.pair_files), which the harness's clients read from the
lab's password file; the programs the lab starts get only the environment they need. Stop kills
every server process and removes the directory.
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
from drills.backup.lab import BackupConfig, LabBackups, os_user_name
from drills.backup.pgbackrest import Repository, Server, archive_current_wal
from drills.errors import LabError
from drills.files import chown_nofollow, open_nofollow
from drills.history import Event
from drills.labs.base import LABS, EventHook, Lab, LabConfig, LabHandle, Progress
from drills.labs.credentials import child_env, dsn, passfile_param
from drills.labs.lab_process import (
    READY_TIMEOUT_S,
    LabUser,
    PostgresNode,
    check_searchable,
    lab_directory,
    own_conf,
    spawn,
)
from drills.labs.pair_files import base_settings, connect_hint, init_cluster, write_access
from drills.network.control import LinkEnds, Network
from drills.network.ports import free_port
from drills.network.proxy import Proxy

LAB_PREFIX = "drills-lab-"
SERVER_BINARIES = ("initdb", "postgres", "pg_basebackup")
EXAMPLE_PASSFILE = Path("/tmp/drills-lab-example/pgpass")
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
        f"target_session_attrs=read-write passfile={EXAMPLE_PASSFILE}",
        "a.dsn": dsn(6432, EXAMPLE_PASSFILE),
        "b.dsn": dsn(6433, EXAMPLE_PASSFILE),
        "a.direct_dsn": dsn(5432, EXAMPLE_PASSFILE),
        "b.direct_dsn": dsn(5433, EXAMPLE_PASSFILE),
        "a.host": "127.0.0.1",
        "b.host": "127.0.0.1",
        "a.port": "5432",
        "b.port": "5433",
        "a.client_port": "6432",
        "b.client_port": "6433",
        "dir": "/tmp/drills-lab-example",
        "passfile": str(EXAMPLE_PASSFILE),
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

    @property
    def passfile(self) -> Path:
        """The superuser's password for the harness's clients (and the standby's streaming)."""
        return self.root / "pgpass"

    def popen(self, argv: list[str], log: Any, as_lab_user: bool = True) -> subprocess.Popen[bytes]:
        return spawn(argv, log, self.user if as_lab_user else None, self.root, child_env())

    def run(self, argv: list[str], what: str, timeout_s: float = 120) -> None:
        """Run a client or setup program as the servers' OS user, with the password file."""
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
            env=child_env(self.passfile),
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

    def _configure(self, datadir: Path, port: int, primary: bool) -> None:
        settings = base_settings(self.root, port)
        if primary and self.cfg.synchronous:
            settings["synchronous_standby_names"] = "'*'"
        if self.backups is not None:
            settings |= self.backups.settings(Server(datadir, port))
        for key, value in self.cfg.settings.items():
            settings[key] = f"'{value}'" if isinstance(value, str) else value
        lines = [f"{key} = {value}" for key, value in settings.items()]
        with open_nofollow(datadir / "postgresql.conf", "ab") as conf:
            conf.write(("\n# drills postgres-pair lab\n" + "\n".join(lines) + "\n").encode())

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
            check_searchable(self.root, self.user, "the servers")
            chown_nofollow(self.root, self.user.uid, self.user.gid)
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
                a.server(),
                pgbench,
                lambda argv, what: self.run(argv, what, timeout_s=3600),
                self.passfile,
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
        owner = (self.user.uid, self.user.gid) if self.user else None
        init_cluster(self.run, self.bin / "initdb", a.datadir, self.passfile, owner)
        write_access(a.datadir, os_user_name(self.user) if self.backups else None)
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
        both = (
            f"host=127.0.0.1,127.0.0.1 port={ports['a']},{ports['b']} user=postgres "
            f"dbname=postgres target_session_attrs=read-write {passfile_param(self.passfile)}"
        )
        variables = {"dsn": both, "dir": str(self.root), "passfile": str(self.passfile)}
        for node in (a, b):
            client_port = ports[node.name]
            variables |= {
                f"{node.name}.dsn": dsn(client_port, self.passfile),
                f"{node.name}.direct_dsn": node.dsn,
                f"{node.name}.host": "127.0.0.1",
                f"{node.name}.port": str(node.port),
                f"{node.name}.client_port": str(client_port),
            }
        return variables

    def _facts(self, a: PostgresNode, b: PostgresNode) -> dict[str, Any]:
        argv = [str(self.bin / "postgres"), "--version"]
        run = subprocess.run(argv, capture_output=True, text=True, check=False, env=child_env())
        version = run.stdout.strip()
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
        hint = connect_hint(self.passfile, {s.name: s.port for s in self.servers})
        self.servers = []
        self._created = False
        return (
            f"lab kept in {self.root} ({ports}); {hint}; remove it with: "
            f"kill -9 {pids or '<no running server>'}; rm -rf {self.root}"
        )
