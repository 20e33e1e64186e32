"""`patroni`: the cluster as its members' REST APIs see it, sampled every 200 ms.

Each sample asks every member for its own status (GET /patroni) at once. Patroni derives a
member's role from `pg_is_in_recovery()`, so `master` (or `primary`) with state `running` is a
server that accepts writes. Recorded with the sample:

- tags `primaries` (the members answering as a running primary, sorted, comma-separated; empty
  when none), `leader_key` (`none` when a member found no leader key in the DCS, else `held`),
  and per member `role.NAME`, `state.NAME` (`no answer` when it did not answer) and
  `timeline.NAME`;
- values `primary_count`, `members_answered` and, with one primary, `replica_lag_bytes` (the
  WAL the furthest replica has yet to replay).

Outcome: ok when exactly one member is a running primary; also ok when several are (split
brain evidence: the checker judges it); fail when none is or no member answered.

Member names come from /cluster (asked once before the drill, matched by the REST address);
a member that cannot be named so is named by its REST address.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import BeforeValidator, Field, field_validator

from drills.durations import Duration
from drills.history import Outcome
from drills.probe import PROBES, Client, Probe, ProbeConfig, Sample
from probes.http import describe_error, http_url

PRIMARY_ROLES = frozenset({"master", "primary"})
NAMING_TIMEOUT_S = 2.0


def _url_list(value: Any) -> Any:
    """`${lab.rest_urls}` expands to one comma-separated string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class PatroniConfig(ProbeConfig):
    kind: Literal["patroni"]
    urls: Annotated[list[str], BeforeValidator(_url_list)] = Field(
        min_length=1, description="the members' REST API URLs (a list or comma-separated)"
    )
    interval: Duration = Field(0.2, description="time between samples (open loop)")
    timeout: Duration = Field(0.5, description="a sample not done by then is not ok")

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        urls = [http_url(url).rstrip("/") for url in value]
        if len(set(urls)) != len(urls):
            raise ValueError("a member's URL is listed twice")
        return urls


def address(url: str) -> str:
    """`http://127.0.0.1:8008/patroni` -> `127.0.0.1:8008`: how a member is matched."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # not a port number: compare the text as given
        return parts.netloc
    return f"{parts.hostname}:{port}"


@dataclass(frozen=True)
class MemberStatus:
    """One member's answer to GET /patroni; `answered` is False when it gave none."""

    name: str
    answered: bool
    role: str = ""
    state: str = ""
    timeline: int | None = None
    wal_position: int | None = None  # a primary's written WAL, a replica's replayed WAL
    unlocked: bool = False  # it found no leader key in the DCS
    problem: str = ""

    @property
    def is_primary(self) -> bool:
        return self.answered and self.role in PRIMARY_ROLES and self.state == "running"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_status(name: str, raw: Any) -> MemberStatus:
    if not isinstance(raw, dict):
        return MemberStatus(name, False, problem=f"not a member status: {str(raw)[:60]}")
    found = raw.get("xlog")
    xlog: dict[str, Any] = found if isinstance(found, dict) else {}
    position = _int(xlog.get("location"))
    if position is None:
        position = _int(xlog.get("replayed_location"))
    return MemberStatus(
        name=name,
        answered=True,
        role=str(raw.get("role", "")),
        state=str(raw.get("state", "")),
        timeline=_int(raw.get("timeline")),
        wal_position=position,
        unlocked=bool(raw.get("cluster_unlocked", False)),
    )


def _tags(members: list[MemberStatus]) -> dict[str, str]:
    tags = {"primaries": ",".join(sorted(m.name for m in members if m.is_primary))}
    answered = [m for m in members if m.answered]
    if answered:
        tags["leader_key"] = "none" if any(m.unlocked for m in answered) else "held"
    for member in members:
        tags[f"state.{member.name}"] = member.state if member.answered else "no answer"
        if member.role:
            tags[f"role.{member.name}"] = member.role
        if member.timeline is not None:
            tags[f"timeline.{member.name}"] = str(member.timeline)
    return tags


def _values(members: list[MemberStatus]) -> dict[str, float]:
    primaries = [m for m in members if m.is_primary]
    values = {
        "primary_count": float(len(primaries)),
        "members_answered": float(sum(m.answered for m in members)),
    }
    replicas = [m.wal_position for m in members if m.answered and not m.is_primary]
    behind = [p for p in replicas if p is not None]
    if len(primaries) == 1 and primaries[0].wal_position is not None and behind:
        values["replica_lag_bytes"] = float(max(0, primaries[0].wal_position - min(behind)))
    return values


def _describe(member: MemberStatus) -> str:
    if not member.answered:
        return f"{member.name} no answer ({member.problem})"
    return f"{member.name} {member.role or '?'} {member.state or '?'}"


def classify(members: list[MemberStatus]) -> Sample:
    """Ok with exactly one running primary, ok (tagged) with several, fail with none."""
    tags, values = _tags(members), _values(members)
    primaries = sorted(m.name for m in members if m.is_primary)
    if len(primaries) == 1:
        return Sample(Outcome.OK, "", values, tags)
    if primaries:
        return Sample(
            Outcome.OK, f"{len(primaries)} primaries: {', '.join(primaries)}", values, tags
        )
    if not any(m.answered for m in members):
        return Sample(Outcome.FAIL, "no member answered: " + "; ".join(map(_describe, members)))
    return Sample(Outcome.FAIL, "no primary: " + "; ".join(map(_describe, members)), values, tags)


class PatroniClient(Client):
    """Asks every member at once: a member that hangs costs one timeout, not one per member."""

    def __init__(self, config: PatroniConfig, names: dict[str, str]) -> None:
        self.config = config
        self.names = names
        self.sessions = {url: self._session() for url in config.urls}
        self.pool = ThreadPoolExecutor(len(config.urls), thread_name_prefix="patroni-probe")

    @staticmethod
    def _session() -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # proxy variables must not reroute a drill's requests
        return session

    def sample(self, seq: int) -> Sample:
        return classify(list(self.pool.map(self._status, self.config.urls)))

    def _status(self, url: str) -> MemberStatus:
        name = self.names.get(url, address(url))
        try:
            answer = self.sessions[url].get(f"{url}/patroni", timeout=self.config.timeout)
            raw = answer.json()
        except requests.RequestException as exc:
            self.sessions[url].close()
            self.sessions[url] = self._session()
            return MemberStatus(name, False, problem=describe_error(exc))
        except ValueError:
            return MemberStatus(name, False, problem=f"HTTP {answer.status_code}, not JSON")
        return parse_status(name, raw)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for session in self.sessions.values():
            session.close()


def member_names(urls: list[str], timeout_s: float = NAMING_TIMEOUT_S) -> dict[str, str]:
    """URL -> member name, from the first member whose /cluster answers; {} when none does."""
    by_address = {address(url): url for url in urls}
    with requests.Session() as session:
        session.trust_env = False
        for url in urls:
            try:
                raw = session.get(f"{url}/cluster", timeout=timeout_s).json()
            except (requests.RequestException, ValueError):
                continue
            members = raw.get("members", []) if isinstance(raw, dict) else []
            names = {
                by_address[address(str(m["api_url"]))]: str(m["name"])
                for m in members
                if isinstance(m, dict)
                and m.get("name")
                and m.get("api_url")
                and address(str(m["api_url"])) in by_address
            }
            if names:
                return names
    return {}


@PROBES.register("patroni")
class PatroniProbe(Probe):
    Config = PatroniConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names: dict[str, str] = {}

    @property
    def cfg(self) -> PatroniConfig:
        assert isinstance(self.config, PatroniConfig)
        return self.config

    def prepare(self) -> None:
        self.names = member_names(self.cfg.urls)

    def client(self) -> Client:
        return PatroniClient(self.cfg, self.names)
