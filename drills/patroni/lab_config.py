"""The `patroni` lab's configuration: members per site, Patroni's settings (its defaults when
absent, checked as Patroni documents them), PostgreSQL parameters and where the programs are."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from drills.backup.lab import BackupConfig
from drills.durations import CheckInterval
from drills.labs.base import LabConfig
from drills.labs.postgres_pair import Settings

SITE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
RESERVED_SITES = frozenset({"clients", "witness"})  # the other ends of the lab's links
MAX_MEMBERS_PER_SITE = 5

MemberCount = Annotated[int, Field(ge=1, le=MAX_MEMBERS_PER_SITE)]


class PatroniLabConfig(LabConfig):
    kind: Literal["patroni"]
    members: dict[str, MemberCount] = Field(
        default_factory=lambda: {"a": 1, "b": 1},
        description="members per site: {a: 1, b: 1} makes a1 at site a and b1 at site b",
    )
    loop_wait: int = Field(10, ge=1, description="Patroni's loop_wait in seconds")
    retry_timeout: int = Field(10, ge=1, description="Patroni's retry_timeout in seconds")
    ttl: int = Field(
        30,
        ge=1,
        validate_default=True,
        description="Patroni's ttl in seconds: how long the leader key outlives its leader",
    )
    maximum_lag_on_failover: int = Field(
        1048576, ge=0, description="bytes a replica may lag and still be elected"
    )
    synchronous_mode: bool = Field(False, description="Patroni's synchronous_mode")
    parameters: Settings = Field(
        default_factory=dict, description="extra PostgreSQL parameters for every member"
    )
    check_interval: CheckInterval = Field(
        0.25, description="HAProxy's health checks of each member's REST API, e.g. 250ms"
    )
    backup: BackupConfig | None = Field(
        None,
        description="WAL archive of every member and a pgBackRest repository in the lab, the "
        "first full backup taken from the leader (see docs/restore.md)",
    )
    bin_dir: str | None = Field(None, description="directory with PostgreSQL's initdb, postgres")
    patroni: str | None = Field(None, description="path of the patroni program")
    etcd: str | None = Field(None, description="path of the etcd program")
    haproxy: str | None = Field(None, description="path of the haproxy program")
    os_user: str = Field("postgres", description="OS user the members run as under root")

    @field_validator("members")
    @classmethod
    def _sites(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("a Patroni lab needs at least one site with members")
        for site in value:
            if not SITE.match(site) or site in RESERVED_SITES:
                raise ValueError(
                    f"{site!r} is not a site name: a short lowercase name such as a or b "
                    f"(not {' or '.join(sorted(RESERVED_SITES))})"
                )
        return value

    @field_validator("ttl")
    @classmethod
    def _timing(cls, ttl: int, info: ValidationInfo) -> int:
        loop_wait = info.data.get("loop_wait")
        retry_timeout = info.data.get("retry_timeout")
        if loop_wait is None or retry_timeout is None:
            return ttl  # reported at their own keys
        rule = "Patroni needs loop_wait + 2 * retry_timeout <= ttl"
        if ttl <= loop_wait:
            raise ValueError(
                f"ttl ({ttl}) must be longer than loop_wait ({loop_wait}), or the leader key "
                f"expires between the leader's loops: {rule}"
            )
        if loop_wait + 2 * retry_timeout > ttl:
            raise ValueError(
                f"{rule} (a leader that cannot reach the DCS must demote before its key "
                f"expires): {loop_wait} + 2 * {retry_timeout} > {ttl}"
            )
        return ttl

    def member_names(self) -> dict[str, list[str]]:
        """Site -> its members' names: a1, a2... at site a."""
        return {site: [f"{site}{i}" for i in range(1, n + 1)] for site, n in self.members.items()}

    def dcs_settings(self) -> dict[str, object]:
        return {
            "ttl": self.ttl,
            "loop_wait": self.loop_wait,
            "retry_timeout": self.retry_timeout,
            "maximum_lag_on_failover": self.maximum_lag_on_failover,
            "synchronous_mode": self.synchronous_mode,
        }
