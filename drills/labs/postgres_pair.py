"""`postgres-pair`: site A primary and site B streaming standby on loopback.

Each server runs in a fresh temporary directory on a free port, as an unprivileged OS user
when the harness runs as root (initdb refuses root). Stop kills every server process and
removes the directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import psycopg
from pydantic import BeforeValidator, Field

from drills.errors import LabError, TargetError
from drills.history import Event
from drills.labs.base import LABS, EventHook, Lab, LabConfig, LabHandle, Progress
from drills.network.control import LinkEnds, Network
from drills.network.proxy import Proxy
from drills.proctree import alive, descendants, signal_pids, signal_tree, start_time
from drills.targets import PROMOTE, REJOIN, RESTART, SIGNAL, promote_postgres

READY_TIMEOUT_S = 30.0
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _User:
    uid: int
    gid: int
    name: str


class LabProcess:
    """A server process of a lab, started in the lab's directory and session; a target that
    can be signalled, and killed with everything it ever started at teardown."""

    def __init__(self, name: str, lab: PostgresPairLab, port: int) -> None:
        self.name = name
        self.lab = lab
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        # Every process the server had, with its start time, so that a pid reused by an
        # unrelated process is never signalled at teardown.
        self.known_pids: dict[int, int | None] = {}

    def argv(self) -> list[str]:
        raise NotImplementedError

    def wait_ready(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        log = (self.lab.root / f"{self.name}.log").open("ab")
        try:
            self.proc = self.lab.popen(self.argv(), log, as_lab_user=self.as_lab_user)
        finally:
            log.close()
        self._remember([self.proc.pid])
        self.lab.journal(
            {"op": "process", "pid": self.proc.pid, "start": start_time(self.proc.pid)}
        )
        self.wait_ready()

    as_lab_user = True  # PostgreSQL refuses root; other servers run as the harness does

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.lab.root / f"{self.name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def pid(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            raise TargetError(f"{self.name}: server is not running")
        return self.proc.pid

    def _remember(self, pids: list[int]) -> None:
        for pid in pids:
            self.known_pids.setdefault(pid, start_time(pid))

    def signal(self, sig: signal.Signals, sent: list[int] | None = None) -> list[int]:
        sent = [] if sent is None else sent
        try:
            return signal_tree(self.pid(), sig, sent)
        finally:
            self._remember(sent)

    def kill_all(self) -> None:
        """SIGKILL the server and every process it ever had; wait until they are gone."""
        if self.proc is not None and self.proc.poll() is None:
            self._remember([self.proc.pid, *descendants(self.proc.pid)])
        pids = sorted(
            pid
            for pid, started in self.known_pids.items()
            if alive(pid) and (started is None or start_time(pid) == started)
        )
        signal_pids(pids, signal.SIGCONT)
        signal_pids(pids, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)


class PostgresNode(LabProcess):
    """One PostgreSQL server of the lab; a target with every ability."""

    def __init__(self, name: str, lab: PostgresPairLab, datadir: Path, port: int) -> None:
        super().__init__(name, lab, port)
        self.datadir = datadir

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def argv(self) -> list[str]:
        return [str(self.lab.bin / "postgres"), "-D", str(self.datadir)]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(
                    f"{self.name}: server exited ({self.proc.returncode}): {self.log_tail()}"
                )
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return
            except psycopg.Error as exc:
                last = str(exc).strip()
            time.sleep(0.05)
        raise LabError(f"{self.name}: not ready after {READY_TIMEOUT_S:g}s: {last}")

    def restart(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill_all()
        else:
            self.kill_all()  # children of a killed server may linger briefly
        self.start()

    def promote(self, timeout_s: float) -> None:
        promote_postgres(self.dsn, timeout_s, self.name)

    def rejoin(self, primary: object) -> str:
        """Bring this server (failed, or an old primary) back as a streaming standby of
        `primary`, from a fresh base backup (which, unlike pg_rewind, needs no clean shutdown)."""
        if not isinstance(primary, PostgresNode) or primary.lab is not self.lab:
            raise TargetError(f"{self.name} can rejoin only a server of its own lab")
        self.kill_all()
        shutil.rmtree(self.datadir, ignore_errors=True)
        port = self.lab.replication_port(self.name, primary)
        self.lab.run(
            [
                str(self.lab.bin / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(port), "-U", "postgres"),
                *("-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast", "-N"),
            ],
            f"pg_basebackup of {self.name} from {primary.name}",
        )
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nsynchronous_standby_names = ''\n"
                f"cluster_name = '{self.name}'\n"
            )
        self.start()
        return f"{self.name} streams from {primary.name} (fresh base backup)"


@LABS.register("postgres-pair")
class PostgresPairLab(Lab):
    Config = PostgresPairConfig
    nodes: ClassVar[dict[str, str]] = {
        "a": "site A: the primary when the drill starts",
        "b": "site B: a streaming standby of A (pg_basebackup -R)",
    }
    node_abilities = frozenset({SIGNAL, RESTART, PROMOTE, REJOIN})
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
        self.user: _User | None = None
        self.servers: list[PostgresNode] = []
        self.proxy: Proxy | None = None
        self.link_ports: dict[str, dict[str, Any]] = {}
        self._created = False

    def popen(self, argv: list[str], log: Any, as_lab_user: bool = True) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C in the terminal reaches the harness, not the servers,
        # so the harness decides what happens to them.
        user = self.user if as_lab_user else None
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=user.uid if user else None,
            group=user.gid if user else None,
            extra_groups=[] if user else None,
            cwd=self.root,
        )

    def run(self, argv: list[str], what: str) -> None:
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
            timeout=120,
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
        self.user = _User(entry.pw_uid, entry.pw_gid, entry.pw_name)

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
        self.journal({"op": "lab-dir", "path": str(self.root), "bin": str(self.bin)})
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
        a = PostgresNode("a", self, self.root / "a", free_port())
        b = PostgresNode("b", self, self.root / "b", free_port())
        self.progress(f"lab: initdb site A in {self.root}")
        initdb = [str(self.bin / "initdb"), "-D", str(a.datadir), "-U", "postgres"]
        self.run([*initdb, "--auth=trust", "-N", "-E", "UTF8", "--locale=C"], "initdb")
        self._configure(a.datadir, a.port, primary=True)
        self.servers.append(a)
        a.start()
        ports = {"a": a.port, "b": b.port, "replication": a.port}
        network = None
        if self.cfg.proxy:
            self.proxy = Proxy(self._link_changed)
            self.proxy.start()
            ports = {
                "a": self.add_link("clients-a", a.port),
                "b": self.add_link("clients-b", b.port),
                "replication": self.add_link("replication", a.port),
            }
            network = Network(self.proxy, dict(self.LINKS))
        self.progress(f"lab: site A primary up on 127.0.0.1:{a.port}; base backup for site B")
        # Through the replication link: -R then points the standby at the link, not at A.
        self.run(
            [
                str(self.bin / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(ports["replication"]), "-U", "postgres"),
                *("-D", str(b.datadir), "-R", "-X", "stream", "-c", "fast", "-N"),
            ],
            "pg_basebackup",
        )
        with (b.datadir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {b.port}\nsynchronous_standby_names = ''\ncluster_name = 'b'\n")
        self.servers.append(b)
        b.start()
        self._wait_streaming(a)
        mode = "synchronous" if self.cfg.synchronous else "asynchronous"
        via = " through the fault proxy" if self.proxy else ""
        self.progress(f"lab: site B standby streaming on 127.0.0.1:{b.port} ({mode}{via})")
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
        version = subprocess.run(
            [str(self.bin / "postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        facts = {
            "kind": "postgres-pair",
            "postgres": version,
            "replication": mode,
            "ports": {"a": a.port, "b": b.port},
            "links": self.link_ports,
        }
        return LabHandle(
            variables=variables, targets={"a": a, "b": b}, facts=facts, network=network
        )

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
