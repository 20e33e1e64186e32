"""`patroni`: how a sample of the members' GET /patroni answers is classified.

Each member is a tiny local HTTP server answering like Patroni 3.0's /patroni (role from
`pg_is_in_recovery()`: `master` or `replica`) and /cluster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from drills.history import Outcome
from probes.patroni import PatroniClient, PatroniConfig, PatroniProbe, classify, parse_status
from tests.unit.probes.conftest import Routes

Server = Callable[[Routes], tuple[str, list[tuple[str, str, str]]]]

PRIMARY = {
    "state": "running",
    "role": "master",
    "timeline": 2,
    "xlog": {"location": 50_331_648},
    "dcs_last_seen": 1700000000,
    "database_system_identifier": "7312345678901234567",
    "patroni": {"version": "3.0.2", "scope": "drills"},
}
REPLICA = {
    "state": "running",
    "role": "replica",
    "timeline": 2,
    "xlog": {"received_location": 50_331_000, "replayed_location": 50_330_648, "paused": False},
    "dcs_last_seen": 1700000000,
}
UNLOCKED_REPLICA = {**REPLICA, "cluster_unlocked": True}


def member(http_server: Server, status: dict[str, Any], delay: float = 0) -> str:
    headers = {"Content-Type": "application/json", **({"delay": str(delay)} if delay else {})}
    base, _ = http_server({"/patroni": (200, headers, json.dumps(status))})
    return base


def client(*urls: str, names: dict[str, str] | None = None) -> PatroniClient:
    config = PatroniConfig.model_validate({"kind": "patroni", "urls": list(urls)})
    return PatroniClient(config, names or {})


def test_defaults_and_urls_as_one_comma_separated_string() -> None:
    config = PatroniConfig.model_validate(
        {"kind": "patroni", "urls": "http://127.0.0.1:8008, http://127.0.0.1:8009/"}
    )
    assert config.urls == ["http://127.0.0.1:8008", "http://127.0.0.1:8009"]
    assert (config.interval, config.timeout) == (0.2, 0.5)
    with pytest.raises(ValidationError, match="not an http"):
        PatroniConfig.model_validate({"kind": "patroni", "urls": "127.0.0.1:8008"})
    with pytest.raises(ValidationError, match="at least 1 item"):
        PatroniConfig.model_validate({"kind": "patroni", "urls": ""})


def test_one_running_primary_is_ok_with_roles_timelines_and_lag(http_server: Server) -> None:
    a, b = member(http_server, PRIMARY), member(http_server, REPLICA)
    sample = client(a, b, names={a: "pg-a", b: "pg-b"}).sample(1)
    assert (sample.outcome, sample.detail) == (Outcome.OK, "")
    assert sample.tags == {
        "primaries": "pg-a",
        "leader_key": "held",
        "state.pg-a": "running",
        "role.pg-a": "master",
        "timeline.pg-a": "2",
        "state.pg-b": "running",
        "role.pg-b": "replica",
        "timeline.pg-b": "2",
    }
    assert sample.values == {
        "primary_count": 1.0,
        "members_answered": 2.0,
        "replica_lag_bytes": 1000.0,
    }


def test_no_primary_fails_and_says_what_each_member_is(
    http_server: Server, closed_port: int
) -> None:
    b = member(http_server, UNLOCKED_REPLICA)
    gone = f"http://127.0.0.1:{closed_port}"
    sample = client(gone, b, names={b: "pg-b"}).sample(1)
    assert sample.outcome is Outcome.FAIL
    assert sample.detail == (
        f"no primary: 127.0.0.1:{closed_port} no answer "
        "(ConnectionError: [Errno 111] Connection refused); pg-b replica running"
    )
    assert sample.tags is not None
    assert sample.tags["primaries"] == "" and sample.tags["leader_key"] == "none"
    assert sample.tags[f"state.127.0.0.1:{closed_port}"] == "no answer"


def test_two_primaries_are_ok_but_named_as_evidence(http_server: Server) -> None:
    a, b = member(http_server, PRIMARY), member(http_server, PRIMARY)
    sample = client(a, b, names={a: "pg-a", b: "pg-b"}).sample(1)
    assert (sample.outcome, sample.detail) == (Outcome.OK, "2 primaries: pg-a, pg-b")
    assert sample.tags is not None and sample.tags["primaries"] == "pg-a,pg-b"
    assert sample.values is not None and sample.values["primary_count"] == 2.0


def test_a_primary_that_is_not_running_does_not_count() -> None:
    stopping = parse_status("pg-a", {**PRIMARY, "state": "stopping"})
    sample = classify([stopping, parse_status("pg-b", REPLICA)])
    assert (sample.outcome, sample.detail) == (
        Outcome.FAIL,
        "no primary: pg-a master stopping; pg-b replica running",
    )
    assert classify([parse_status("pg-a", {**PRIMARY, "role": "primary"})]).outcome is Outcome.OK


def test_no_member_answering_fails_without_tags(closed_port: int) -> None:
    sample = client(f"http://127.0.0.1:{closed_port}").sample(1)
    assert sample.outcome is Outcome.FAIL
    assert sample.detail.startswith("no member answered: 127.0.0.1:")
    assert sample.tags is None


def test_a_member_that_hangs_costs_one_timeout_not_one_each(http_server: Server) -> None:
    slow = [member(http_server, REPLICA, delay=0.8) for _ in range(2)]
    fast = member(http_server, PRIMARY)
    probe = client(*slow, fast, names={fast: "pg-a"})
    started = time.monotonic()
    sample = probe.sample(1)
    assert time.monotonic() - started < 0.5 * 2  # the two timeouts ran side by side
    assert sample.outcome is Outcome.OK and sample.tags is not None
    assert sample.tags["primaries"] == "pg-a"
    assert [sample.tags[f"state.{s.removeprefix('http://')}"] for s in slow] == ["no answer"] * 2


def test_proxy_variables_do_not_reroute_samples(
    http_server: Server, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("NO_PROXY", "")
    a = member(http_server, PRIMARY)
    assert client(a).sample(1).outcome is Outcome.OK


def test_members_are_named_from_cluster_before_the_drill(http_server: Server) -> None:
    a = member(http_server, PRIMARY)
    port = a.rsplit(":", 1)[1]
    cluster = {
        "members": [
            {"name": "pg-a", "role": "leader", "api_url": f"http://127.0.0.1:{port}/patroni"},
            {"name": "pg-x", "role": "replica", "api_url": "http://10.0.0.9:8008/patroni"},
        ]
    }
    b, _ = http_server({"/cluster": (200, {}, json.dumps(cluster))})
    config = PatroniConfig.model_validate({"kind": "patroni", "urls": [b, a]})
    probe = PatroniProbe("cluster", config, "run-1")
    probe.prepare()
    assert probe.names == {a: "pg-a"}
    client = probe.client()
    try:
        tags = client.sample(1).tags
    finally:
        client.close()
    assert tags is not None and tags["primaries"] == "pg-a"
    assert tags[f"state.{b.removeprefix('http://')}"] == "no answer"  # 404, not JSON


def test_a_status_that_is_not_an_object_is_no_answer() -> None:
    found = parse_status("pg-a", ["not", "a", "status"])
    assert not found.answered and found.problem.startswith("not a member status")
