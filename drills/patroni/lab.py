"""`patroni`: a Patroni cluster with etcd and HAProxy, started on loopback for a drill.

etcd stands for the DCS at a third site (the witness); Patroni members run at sites a and b
(one each by default), each bootstrapping or cloning PostgreSQL 15 in its own directory with
its own REST and PostgreSQL ports; HAProxy sends clients to the member whose REST API answers
/primary (write port) or /replica (read port). Every path between sites goes through drills'
fault proxy (lab_topology). The lab is ready when the cluster has a leader, every replica
streams and HAProxy reaches the leader. Stop kills everything (SIGKILL) and removes the
directory; the directory and every server are journalled before they exist. With `backup:`
every member archives into one pgBackRest repository in the directory (lab_backup).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any, ClassVar

from drills.abilities import NodeSpec
from drills.backup.pgbackrest import Repository, archive_current_wal
from drills.errors import LabError
from drills.files import chown_nofollow, write_nofollow
from drills.history import Event
from drills.labs.base import LABS, EventHook, Lab, LabConfig, LabHandle, Progress
from drills.labs.lab_process import (
    LabProcess,
    LabUser,
    check_searchable,
    lab_directory,
    spawn,
)
from drills.network.control import LinkEnds, Network
from drills.network.ports import free_port
from drills.network.proxy import Proxy
from drills.patroni import lab_topology as topology
from drills.patroni.cluster import ClusterTarget, RoleTarget, pick
from drills.patroni.lab_backup import PatroniBackups
from drills.patroni.lab_config import PatroniLabConfig
from drills.patroni.lab_files import (
    LabSecrets,
    MemberPlan,
    dsn,
    haproxy_config,
    pgpass,
    write_member,
    write_private,
)
from drills.patroni.lab_nodes import BalancerNode, EtcdNode, PatroniMember
from drills.patroni.lab_setup import (
    LAB_PREFIX,
    Tools,
    find_tools,
    kill_leftovers,
    lab_env,
    lab_user,
    versions,
)
from drills.patroni.lab_wait import wait_cluster
from drills.patroni.rest import PatroniRest
from drills.targets import Target

_WIDEST = PatroniLabConfig.model_validate({"kind": "patroni", "members": {"a": 3, "b": 3}})


@LABS.register("patroni")
class PatroniLab(Lab):
    Config = PatroniLabConfig
    nodes: ClassVar[dict[str, NodeSpec]] = topology.nodes(
        PatroniLabConfig.model_validate({"kind": "patroni"})
    )
    # Validation knows the members of the widest common lab (a1-a3, b1-b3); a variable of a
    # member the lab does not have is an error once the lab has started.
    variables: ClassVar[dict[str, str]] = topology.example_variables(_WIDEST)

    @classmethod
    def nodes_for(cls, config: LabConfig) -> dict[str, NodeSpec]:
        assert isinstance(config, PatroniLabConfig)
        return topology.nodes(config)

    @classmethod
    def site_nodes_for(cls, config: LabConfig) -> dict[str, tuple[str, ...]]:
        assert isinstance(config, PatroniLabConfig)
        return topology.site_nodes(config)

    @classmethod
    def links_for(cls, config: LabConfig) -> dict[str, LinkEnds]:
        assert isinstance(config, PatroniLabConfig)
        return topology.links(config)

    def __init__(
        self, config: LabConfig, progress: Progress, events: EventHook | None = None
    ) -> None:
        super().__init__(config, progress, events)
        assert isinstance(config, PatroniLabConfig)
        self.cfg = config
        self.root = Path()
        self.bin_dir = Path()
        self.user: LabUser | None = None
        self.env: dict[str, str] = {}
        self.secrets = LabSecrets()
        self.proxy: Proxy | None = None
        self.link_ports: dict[str, dict[str, Any]] = {}
        self.processes: list[LabProcess] = []
        self.members: dict[str, PatroniMember] = {}
        self.rest: PatroniRest | None = None
        self.backups: PatroniBackups | None = None
        self.backup_facts: dict[str, object] = {}
        self._created = False

    @property
    def repository(self) -> Repository | None:
        return self.backups.repository if self.backups else None

    # -- what the lab's processes need (drills.labs.lab_process.LabHost) ----------------------
    def popen(self, argv: list[str], log: Any, as_lab_user: bool = True) -> subprocess.Popen[bytes]:
        return spawn(argv, log, self.user if as_lab_user else None, self.root, self.env)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LabHandle:
        tools = find_tools(self.cfg)  # before anything is made
        self.user = lab_user(self.cfg.os_user)
        # Journalled before it exists: a crash in between leaves nothing unrecorded.
        self.root = Path(tempfile.gettempdir()) / f"{LAB_PREFIX}{uuid.uuid4().hex[:12]}"
        self.journal(lab_directory(self.root, tools.bin_dir, self.user))
        self.root.mkdir(mode=0o700)
        self._created = True
        self.bin_dir = tools.bin_dir
        try:
            return self._start(tools)
        except BaseException:
            self.stop()
            raise

    def _start(self, tools: Tools) -> LabHandle:
        if self.user is not None:
            check_searchable(self.root, self.user, "the Patroni members")
            chown_nofollow(self.root, self.user.uid, self.user.gid)
        self.env = lab_env(self.root)
        if self.cfg.backup is not None:
            self.backups = PatroniBackups(
                self.cfg.backup, self.root, self.user, self.progress, self.events, self.journal
            )
        facts = versions(tools)
        self.proxy = Proxy(self._link_changed)
        self.proxy.start()
        etcd = EtcdNode(self, tools.etcd, self.root / "etcd", (free_port(), free_port()))
        self._run(etcd)
        plans = self._plan(etcd.port)
        self._write_files(plans, tools)
        self.progress(f"lab: etcd on {etcd.url}; starting Patroni members {', '.join(plans)}")
        self._start_members(plans, tools)
        lb = self._start_balancer(plans, tools)
        rest = PatroniRest([m.rest_url for m in self.members.values()], 1.0, self.secrets.rest_auth)
        self.rest = rest
        leader = wait_cluster(
            rest,
            list(self.members.values()),
            self._dsns(lb),
            etcd,
            synchronous=self.cfg.synchronous_mode,
        )
        self.progress(
            f"lab: Patroni cluster up, leader {leader}; HAProxy writes on 127.0.0.1:{lb.port}, "
            f"reads on 127.0.0.1:{lb.read_port} (ttl {self.cfg.ttl}, loop_wait "
            f"{self.cfg.loop_wait}, retry_timeout {self.cfg.retry_timeout})"
        )
        if self.backups is not None:
            self.backup_facts = self.backups.prepare(
                self.members[leader].server(), tools.bin_dir / "pgbench", self.root / "pgpass"
            )
        return LabHandle(
            variables=self._variables(lb, etcd),
            targets=self._targets(rest, etcd, lb),
            facts=self._facts(facts, lb, etcd, leader),
            network=Network(self.proxy, topology.links(self.cfg)),
            sites={site: list(names) for site, names in self.cfg.member_names().items()},
        )

    def _run(self, process: LabProcess) -> None:
        self.processes.append(process)
        process.start()

    def _plan(self, etcd_port: int) -> dict[str, MemberPlan]:
        """Every member's ports and links (the links are listening before anyone uses them)."""
        plans = {}
        etcd_links = {site: self._link(f"etcd-{site}", etcd_port) for site in self.cfg.members}
        for site, names in self.cfg.member_names().items():
            for name in names:
                pg_port = free_port()
                plans[name] = MemberPlan(
                    name=name,
                    site=site,
                    home=self.root / name,
                    pg_port=pg_port,
                    rest_port=free_port(),
                    replication_port=self._link(f"replication-{name}", pg_port),
                    etcd_port=etcd_links[site],
                )
        return plans

    def _write_files(self, plans: dict[str, MemberPlan], tools: Tools) -> None:
        owner = (self.user.uid, self.user.gid) if self.user else None
        scope = f"drills-{self.root.name.removeprefix(LAB_PREFIX)}"
        for plan in plans.values():
            backup = self.backups.member(plan.server, plan.home) if self.backups else None
            write_member(plan, self.cfg, self.secrets, scope, tools.bin_dir, owner, backup)
        write_private(self.root / "pgpass", pgpass(self.secrets))  # the harness's clients

    def _start_members(self, plans: dict[str, MemberPlan], tools: Tools) -> None:
        for plan in plans.values():
            passfile = self.root / "pgpass"
            member = PatroniMember(
                self, plan, tools.patroni, dsn(plan.pg_port, passfile), self.repository
            )
            self.members[plan.name] = member
            self._run(member)
            if len(self.members) == 1:
                # A head start: the first member (a1) most likely bootstraps the cluster and
                # leads it when the drill starts.
                member.wait_rest()

    def _start_balancer(self, plans: dict[str, MemberPlan], tools: Tools) -> BalancerNode:
        servers = [
            (plan, self._link(f"clients-{name}", plan.pg_port)) for name, plan in plans.items()
        ]
        config = self.root / "haproxy.cfg"
        ports = (free_port(), free_port())
        write_nofollow(config, haproxy_config(ports, servers, self.cfg.check_interval))
        lb = BalancerNode(self, tools.haproxy, config, ports)
        self._run(lb)
        return lb

    def _link(self, name: str, upstream_port: int) -> int:
        assert self.proxy is not None
        port = self.proxy.add_link(name, ("127.0.0.1", upstream_port))
        ends = topology.links(self.cfg)[name]
        self.link_ports[name] = {"port": port, "client": ends.client, "server": ends.server}
        return port

    def _link_changed(self, link: str, change: str, at_ns: int) -> None:
        if self.events is not None:
            self.events(Event("proxy", link, change, at_ns))

    # -- what the drill gets ----------------------------------------------------------------
    def _dsns(self, lb: BalancerNode) -> tuple[str, str | None]:
        passfile = self.root / "pgpass"
        replicas = len(self.members) > 1
        return dsn(lb.port, passfile), dsn(lb.read_port, passfile) if replicas else None

    def _variables(self, lb: BalancerNode, etcd: EtcdNode) -> dict[str, str]:
        passfile = self.root / "pgpass"
        variables = {
            "dsn": dsn(lb.port, passfile),
            "replica_dsn": dsn(lb.read_port, passfile),
            "rest_urls": ",".join(m.rest_url for m in self.members.values()),
            "etcd_url": etcd.url,
            "scope": f"drills-{self.root.name.removeprefix(LAB_PREFIX)}",
            "passfile": str(passfile),
            "dir": str(self.root),
        }
        for name, member in self.members.items():
            variables |= {
                f"{name}.dsn": dsn(member.port, passfile),
                f"{name}.client_dsn": dsn(self.link_ports[f"clients-{name}"]["port"], passfile),
                f"{name}.rest_url": member.rest_url,
                f"{name}.port": str(member.port),
            }
        return variables

    def _targets(self, rest: PatroniRest, etcd: EtcdNode, lb: BalancerNode) -> dict[str, Target]:
        targets: dict[str, Target] = dict(self.members)
        return targets | {
            "cluster": ClusterTarget("cluster", rest),
            "leader": RoleTarget("leader", "leader", rest, self._member),
            "replica": RoleTarget("replica", "replica", rest, self._member),
            "etcd": etcd,
            "lb": lb,
        }

    def _member(self, name: str) -> Target:
        try:
            return self.members[name]
        except KeyError:
            raise LabError(f"the cluster names a member {name!r} this lab did not start") from None

    def _facts(
        self, found: dict[str, str], lb: BalancerNode, etcd: EtcdNode, leader: str
    ) -> dict[str, Any]:
        return {
            "kind": "patroni",
            "versions": found,
            "settings": self.cfg.dcs_settings(),
            "members": {
                name: {"site": m.site, "port": m.port, "rest_port": m.rest_port}
                for name, m in self.members.items()
            },
            "leader_at_start": leader,
            "haproxy": {
                "write_port": lb.port,
                "read_port": lb.read_port,
                "check_interval_s": self.cfg.check_interval,
            },
            "etcd": {"port": etcd.port},
            "links": self.link_ports,
        } | ({"backup": self.backup_facts} if self.backups else {})

    def before_steps(self) -> None:
        """Every WAL segment archived (the probes' tables too), from the leader: a restore
        loses only what the drill wrote."""
        if self.backups is not None and self.rest is not None:
            archive_current_wal(self.members[pick(self.rest.cluster(), "leader")].dsn)

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        # Patroni first (it would restart a PostgreSQL it saw die), then the rest.
        for process in sorted(self.processes, key=lambda p: not isinstance(p, PatroniMember)):
            process.kill_all()
        self.processes = []
        if self._created:
            kill_leftovers(self.root, self.bin_dir)
            shutil.rmtree(self.root, ignore_errors=True)
            self._created = False

    def keep(self) -> str:
        pids = " ".join(str(p.proc.pid) for p in self.processes if p.proc and p.proc.poll() is None)
        self.processes = []
        self._created = False
        return (
            f"lab kept in {self.root}; remove it with: kill -9 {pids or '<none running>'} "
            f"(and the postmasters in {self.root}/*/data/postmaster.pid); rm -rf {self.root}"
        )
