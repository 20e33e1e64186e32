"""Patroni's REST API as drills uses it: the cluster as the members see it, and the requests
that change it (switchover, failover, maintenance pause). Errors become TargetError."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import requests

from drills.errors import TargetError

PRIMARY_ROLES = frozenset({"leader", "master", "primary", "standby_leader"})


@dataclass(frozen=True)
class Member:
    name: str
    role: str  # as /cluster says: leader, replica, sync_standby, standby_leader
    state: str  # running, starting, stopped...
    api_url: str
    host: str | None = None
    port: int | None = None
    timeline: int | None = None
    lag: int | None = None  # bytes behind the leader; None when unknown or the leader

    @property
    def is_leader(self) -> bool:
        return self.role in PRIMARY_ROLES


@dataclass(frozen=True)
class ClusterView:
    """One member's view of the cluster (read from the DCS through that member)."""

    members: list[Member]
    paused: bool = False
    source: str = ""  # the REST URL that answered

    @property
    def leader(self) -> Member | None:
        return next((m for m in self.members if m.is_leader), None)

    @property
    def replicas(self) -> list[Member]:
        return [m for m in self.members if not m.is_leader]

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)


def _member(raw: dict[str, Any]) -> Member:
    lag = raw.get("lag")
    return Member(
        name=str(raw["name"]),
        role=str(raw.get("role", "")),
        state=str(raw.get("state", "")),
        api_url=str(raw.get("api_url", "")),
        host=raw.get("host"),
        port=raw.get("port"),
        timeline=raw.get("timeline"),
        lag=lag if isinstance(lag, int) else None,
    )


def parse_cluster(raw: dict[str, Any], source: str = "") -> ClusterView:
    members = [_member(m) for m in raw.get("members", []) if isinstance(m, dict) and "name" in m]
    return ClusterView(members, bool(raw.get("pause", False)), source)


@dataclass
class PatroniRest:
    """The REST APIs of a cluster's members; a read asks each in turn until one answers."""

    urls: list[str]
    timeout_s: float = 2.0
    # For the requests that change the cluster; kept out of repr so that no error shows it.
    auth: tuple[str, str] | None = field(default=None, repr=False)
    session: requests.Session = field(default_factory=requests.Session)
    # How `drills recover` finds the password again: the scenario's text for it
    # (`${env:NAME}`), never the password itself.
    password_source: str | None = None

    def __post_init__(self) -> None:
        self.session.trust_env = False  # proxy variables must not reroute a drill's requests

    def cluster(self) -> ClusterView:
        problems = []
        for url in self.urls:
            try:
                raw = self._request("GET", url, "/cluster")
            except TargetError as exc:
                problems.append(str(exc))
                continue
            if isinstance(raw, dict):
                return parse_cluster(raw, url)
            problems.append(f"{url}/cluster: not a cluster: {str(raw)[:100]}")
        raise TargetError("no Patroni member answered: " + "; ".join(problems))

    def status(self, url: str) -> dict[str, Any]:
        """One member's own status (GET /patroni): role, state, timeline, xlog positions."""
        raw = self._request("GET", url, "/patroni")
        if not isinstance(raw, dict):
            raise TargetError(f"{url}/patroni: not a member status: {str(raw)[:100]}")
        return raw

    def members_paused(self) -> list[bool | None]:
        """Whether each member's own HA loop is in maintenance mode (None: no answer)."""
        seen: list[bool | None] = []
        for url in self.urls:
            try:
                seen.append(bool(self.status(url).get("pause", False)))
            except TargetError:
                seen.append(None)
        return seen

    def switchover(self, leader: str, candidate: str | None = None) -> str:
        body = {"leader": leader, **({"candidate": candidate} if candidate else {})}
        return str(self._change("POST", "/switchover", body))

    def failover(self, candidate: str) -> str:
        return str(self._change("POST", "/failover", {"candidate": candidate}))

    def set_paused(self, paused: bool) -> str:
        self._change("PATCH", "/config", {"pause": paused})
        return "maintenance mode on" if paused else "maintenance mode off"

    def _change(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """Sent to the first member that answers; Patroni forwards nothing, but every member
        writes the request to the DCS, where the leader acts on it."""
        problems = []
        for url in self.urls:
            try:
                return self._request(method, url, path, body, timeout_s=max(self.timeout_s, 60))
            except TargetError as exc:
                if "refused" not in str(exc) and "timed out" not in str(exc):
                    raise
                problems.append(str(exc))
        raise TargetError(f"{method} {path}: no Patroni member answered: " + "; ".join(problems))

    def _request(
        self,
        method: str,
        url: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        where = url.rstrip("/") + path
        try:
            response = self.session.request(
                method,
                where,
                json=body,
                auth=self.auth if method != "GET" else None,
                timeout=timeout_s or self.timeout_s,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise TargetError(f"{method} {where}: timed out") from None
        except requests.ConnectionError as exc:
            raise TargetError(f"{method} {where}: refused or unreachable: {exc}") from None
        if response.status_code >= 400:
            raise TargetError(
                f"{method} {where}: HTTP {response.status_code}: {response.text.strip()[:200]}"
            )
        try:
            return response.json()
        except json.JSONDecodeError:
            return response.text.strip()
