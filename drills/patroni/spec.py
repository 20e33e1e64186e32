"""A Patroni cluster of the user's own as scenario targets (no lab): the cluster, given its
members' REST URLs, and role targets (`leader`, `replica`) that resolve to a member's own target
when a step acts on them.

    targets:
      pg:
        patroni:
          urls: [http://10.0.0.1:8008, http://10.0.0.2:8008]
          auth: {username: admin, password: "${env:PATRONI_PASSWORD}"}
          members:
            pg1: {pid_file: /run/patroni/pg1.pid}
      leader: {role: leader, cluster: pg}
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, field_validator

from drills.durations import Duration
from drills.errors import TargetError
from drills.model import StrictModel
from drills.patroni.cluster import ClusterTarget, Role, RoleTarget
from drills.patroni.rest import PatroniRest
from drills.targets import Target, process_target_class, signal_name

_REF = re.compile(r"\$\{([^}]*)\}")


class PatroniAuth(StrictModel):
    """Patroni's `restapi.authentication`, for the requests that change the cluster."""

    username: str
    password: str = Field(description='e.g. "${env:PATRONI_PASSWORD}": never written in clear')
    # The scenario's own text for the password (`${env:NAME}`): what the crash journal keeps,
    # so that `drills recover` can resume a paused cluster without the password on disk.
    _source: str | None = PrivateAttr(None)


class PatroniMember(StrictModel):
    """A member's own processes, for steps that act on a member (`kill: leader`). The pid file
    is Patroni's: PostgreSQL runs as its child, so signalling it reaches both."""

    pid_file: str = Field(description="Patroni's pid file on this machine")
    start: str | None = Field(None, description="for restart: the command that starts Patroni")
    stop_signal: Annotated[str, AfterValidator(signal_name)] = "SIGTERM"


class PatroniSpec(StrictModel):
    urls: list[str] = Field(min_length=1, description="the members' REST API base URLs")
    auth: PatroniAuth | None = None
    timeout: Duration = Field(2.0, description="for each REST read")
    members: dict[str, PatroniMember] = Field(
        default_factory=dict, description="member name -> its processes on this machine"
    )

    @field_validator("urls")
    @classmethod
    def _http(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not re.match(r"^https?://[^/\s]+/?$", url):
                raise ValueError(f"{url!r} is not a REST API base URL such as http://HOST:8008")
        return [url.rstrip("/") for url in urls]

    def member_class(self) -> type:
        """The abilities every member has (what a role target can be used for): none without
        `members`."""
        if not self.members:
            return RoleTarget
        every_start = all(m.start for m in self.members.values())
        return process_target_class("start" if every_start else None, None)

    def rest(self) -> PatroniRest:
        auth = self.auth
        rest = PatroniRest(
            self.urls, self.timeout, (auth.username, auth.password) if auth else None
        )
        if auth is not None:
            rest.password_source = auth._source
        return rest

    def member_target(self, cluster: str, name: str) -> Target:
        member = self.members.get(name)
        if member is None:
            known = ", ".join(self.members) or "none"
            raise TargetError(
                f"member {name!r} of {cluster} has no target: add it to the cluster's "
                f"`members:` (members: {known})"
            )
        build = process_target_class(member.start, None)
        return build(name, member.pid_file, None, member.start, signal.Signals[member.stop_signal])


def keep_password_sources(specs: dict[str, PatroniSpec], raw_targets: Any) -> None:
    """Each cluster remembers the scenario's text for its password (`raw_targets`: the
    uninterpolated `targets:` mapping)."""
    for name, spec in specs.items():
        raw = raw_targets.get(name) if isinstance(raw_targets, dict) else None
        raw = raw.get("patroni") if isinstance(raw, dict) else None
        auth = raw.get("auth") if isinstance(raw, dict) else None
        password = auth.get("password") if isinstance(auth, dict) else None
        if spec.auth is not None and isinstance(password, str):
            spec.auth._source = password


def fill_password(source: str) -> str:
    """The password from the scenario's text for it, read again (`drills recover`)."""

    def one(match: re.Match[str]) -> str:
        ref = match.group(1).strip()
        if ref.startswith("env:"):
            if ref[4:] not in os.environ:
                raise TargetError(f"set {ref[4:]} (the Patroni password) and run recover again")
            return os.environ[ref[4:]]
        if ref.startswith("file:"):
            try:
                return Path(ref[5:]).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise TargetError(f"cannot read the Patroni password: {exc}") from None
        return match.group(0)

    return _REF.sub(one, source)


def cluster_target(name: str, spec: PatroniSpec) -> ClusterTarget:
    return ClusterTarget(name, spec.rest())


def role_target(name: str, role: Role, cluster: str, spec: PatroniSpec) -> RoleTarget:
    return RoleTarget(name, role, spec.rest(), lambda member: spec.member_target(cluster, member))
