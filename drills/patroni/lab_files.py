"""What the `patroni` lab writes before it starts anything: the secrets made for this lab, each
member's Patroni configuration, HAProxy's configuration, and the client password file.

Passwords live only in files readable by their owner (Patroni's configuration, the pgpass file
that clients name with `passfile=`), never on a command line; local connections need them
(scram-sha-256), none is trusted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drills.backup.pgbackrest import Server
from drills.files import chown_nofollow
from drills.labs.credentials import SUPERUSER as SUPERUSER
from drills.labs.credentials import dsn as dsn
from drills.labs.credentials import password as _password
from drills.labs.credentials import write_private as write_private
from drills.patroni.lab_backup import MemberBackup
from drills.patroni.lab_config import PatroniLabConfig

REPLICATION_USER = "replicator"
REST_USER = "drills"


@dataclass(frozen=True)
class LabSecrets:
    """Generated per lab; gone with its directory."""

    superuser: str = field(default_factory=_password)
    replication: str = field(default_factory=_password)
    rest: str = field(default_factory=_password)

    @property
    def rest_auth(self) -> tuple[str, str]:
        return (REST_USER, self.rest)

    def all(self) -> set[str]:
        return {self.superuser, self.replication, self.rest}


@dataclass(frozen=True)
class MemberPlan:
    """Where one member lives and listens, and the links it is reached through."""

    name: str
    site: str
    home: Path  # its directory: configuration, data, socket, pgpass
    pg_port: int
    rest_port: int
    replication_port: int  # its replication link: the other site streams from it through this
    etcd_port: int  # its site's link to etcd

    @property
    def config(self) -> Path:
        return self.home / "patroni.yml"

    @property
    def datadir(self) -> Path:
        return self.home / "data"

    @property
    def server(self) -> Server:
        return Server(self.datadir, self.pg_port)


def pgpass(secret: LabSecrets) -> str:
    return f"127.0.0.1:*:*:{SUPERUSER}:{secret.superuser}\n"


def _postgres_parameters(cfg: PatroniLabConfig, backup: MemberBackup | None) -> dict[str, Any]:
    """Cluster-wide parameters (Patroni keeps them in the DCS, the same on every member)."""
    return {
        "wal_retrieve_retry_interval": "500ms",  # a replica starts streaming ~5 s sooner
        "max_connections": 60,
        "shared_buffers": "32MB",
        "wal_keep_size": "128MB",
        "wal_receiver_status_interval": "1s",
        "log_min_messages": "warning",
        **(backup.cluster_parameters if backup else {}),
        **cfg.parameters,
    }


def patroni_config(
    member: MemberPlan,
    cfg: PatroniLabConfig,
    secret: LabSecrets,
    scope: str,
    bin_dir: Path,
    backup: MemberBackup | None = None,
) -> dict[str, Any]:
    hba = [
        *(backup.hba if backup else []),
        "local all all scram-sha-256",
        "host all all 127.0.0.1/32 scram-sha-256",
        f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
    ]
    return {
        "scope": scope,
        "namespace": "/drills/",
        "name": member.name,
        "log": {"level": "INFO"},
        "restapi": {
            "listen": f"127.0.0.1:{member.rest_port}",
            "connect_address": f"127.0.0.1:{member.rest_port}",
            "authentication": {"username": REST_USER, "password": secret.rest},
        },
        # Its site's link to etcd, used as a proxy: no discovery of etcd's own addresses,
        # which would go around the link.
        "etcd3": {"host": f"127.0.0.1:{member.etcd_port}", "use_proxies": True},
        "bootstrap": {
            "dcs": {
                **cfg.dcs_settings(),
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": _postgres_parameters(cfg, backup),
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
            "pg_hba": hba,
        },
        "postgresql": {
            "listen": f"127.0.0.1:{member.pg_port}",
            "connect_address": f"127.0.0.1:{member.replication_port}",
            "data_dir": str(member.datadir),
            "bin_dir": str(bin_dir),
            "pgpass": str(member.home / "pgpass"),
            "authentication": {
                "superuser": {"username": SUPERUSER, "password": secret.superuser},
                "replication": {"username": REPLICATION_USER, "password": secret.replication},
                "rewind": {"username": SUPERUSER, "password": secret.superuser},
            },
            "parameters": {
                "unix_socket_directories": str(member.home),
                **(backup.parameters if backup else {}),
            },
            "pg_hba": hba,
            **({"pg_ident": backup.ident} if backup else {}),
        },
        "tags": {"site": member.site},
    }


def write_member(
    member: MemberPlan,
    cfg: PatroniLabConfig,
    secret: LabSecrets,
    scope: str,
    bin_dir: Path,
    owner: tuple[int, int] | None,
    backup: MemberBackup | None = None,
) -> None:
    member.home.mkdir(mode=0o700)
    if owner is not None:
        chown_nofollow(member.home, *owner)
    config = patroni_config(member, cfg, secret, scope, bin_dir, backup)
    text = yaml.safe_dump(config, sort_keys=False)
    write_private(member.config, text, owner)


def haproxy_config(
    ports: tuple[int, int], members: list[tuple[MemberPlan, int]], interval_s: float
) -> str:
    """A write port (`/primary` answers 200 on the leader only) and a read port (`/replica`)
    over each member's client link, checked on its REST API. OPTIONS, as Patroni's own HAProxy
    example does: the status without a body, which HAProxy would cut short (it closes checks
    with a reset) and Patroni would log as an error at every check."""
    check = (
        f"    default-server inter {round(interval_s * 1000)}ms fall 2 rise 1 "
        "on-marked-down shutdown-sessions"
    )
    servers = [
        f"    server {m.name} 127.0.0.1:{client_port} check port {m.rest_port}"
        for m, client_port in members
    ]
    lines = [
        "global",
        "    maxconn 256",
        "defaults",
        "    mode tcp",
        "    timeout connect 1s",
        "    timeout client 30m",
        "    timeout server 30m",
        "    timeout check 1s",
        "listen primary",
        f"    bind 127.0.0.1:{ports[0]}",
        "    option httpchk OPTIONS /primary",
        "    http-check expect status 200",
        check,
        *servers,
        "listen replicas",
        f"    bind 127.0.0.1:{ports[1]}",
        "    balance roundrobin",
        "    option httpchk OPTIONS /replica",
        "    http-check expect status 200",
        check,
        *servers,
    ]
    return "\n".join(lines) + "\n"
