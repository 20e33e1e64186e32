"""`http`: which answers are ok, and what a failure's detail says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drills.history import Outcome
from probes.http import HttpClient, HttpConfig
from tests.unit.probes.conftest import Routes

Server = Callable[[Routes], tuple[str, list[tuple[str, str, str]]]]


def client(url: str, **extra: Any) -> HttpClient:
    spec = {"kind": "http", "url": url, "timeout": "300ms", **extra}
    return HttpClient(HttpConfig.model_validate(spec))


def test_an_expected_status_is_ok_and_names_the_site(http_server: Server) -> None:
    base, seen = http_server({"/health": (200, {"X-Drills-Site": "a"}, "ready")})
    sample = client(f"{base}/health").sample(1)
    assert (sample.outcome, sample.detail, sample.tags) == (Outcome.OK, "", {"site": "a"})
    assert seen == [("GET", "/health", "")]


def test_an_unexpected_status_fails_with_the_start_of_the_body(http_server: Server) -> None:
    base, _ = http_server({"/health": (503, {"X-Drills-Site": "b"}, "down for maintenance")})
    sample = client(f"{base}/health").sample(1)
    assert sample.outcome is Outcome.FAIL
    assert sample.detail == "HTTP 503: down for maintenance"
    assert sample.tags == {"site": "b"}


def test_expected_statuses_and_body_pattern_are_the_scenarios(http_server: Server) -> None:
    base, _ = http_server({"/gone": (404, {}, "not here"), "/page": (200, {}, "status: busy")})
    assert client(f"{base}/gone", expect=[200, 404]).sample(1).outcome is Outcome.OK
    mismatch = client(f"{base}/page", body="status: (ok|idle)").sample(1)
    assert mismatch.outcome is Outcome.FAIL
    assert mismatch.detail == "body does not match 'status: (ok|idle)'"
    assert mismatch.tags is None


def test_a_refused_connection_or_a_slow_answer_fails(http_server: Server, closed_port: int) -> None:
    refused = client(f"http://127.0.0.1:{closed_port}/").sample(1)
    assert refused.outcome is Outcome.FAIL
    assert refused.detail == "ConnectionError: [Errno 111] Connection refused"
    base, _ = http_server({"/slow": (200, {"delay": "0.5"}, "late")})
    slow = client(f"{base}/slow").sample(2)
    assert slow.outcome is Outcome.FAIL
    assert slow.detail == "ReadTimeout: Read timed out"


def test_the_client_reconnects_after_a_failure(http_server: Server) -> None:
    base, _ = http_server({"/slow": (200, {"delay": "0.5"}, ""), "/fast": (200, {}, "")})
    probe = client(f"{base}/slow")
    session = probe.session
    assert probe.sample(1).outcome is Outcome.FAIL
    assert probe.session is not session  # a broken keep-alive connection is not reused
