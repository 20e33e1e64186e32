"""`http`: which answers are ok, and what a failure's detail says, the same from the threaded
client (requests) and the event-loop client (probes.http_loop)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from drills.history import Outcome
from drills.probe import Sample, run_to_end
from probes.http import HttpClient, HttpConfig, HttpProbe
from probes.http_loop import HttpLoopClient, http_loop_client

Server = Callable[..., tuple[str, list[tuple[str, str, str]]]]
Sampler = Callable[[int], Sample]


def config(url: str, **extra: Any) -> HttpConfig:
    return HttpConfig.model_validate({"kind": "http", "url": url, "timeout": "300ms", **extra})


def loop_client(url: str, **extra: Any) -> HttpLoopClient:
    found = http_loop_client(config(url, **extra))
    assert found is not None
    return found


@pytest.fixture(params=["threads", "loop"])
def client(request: pytest.FixtureRequest) -> Callable[..., Sampler]:
    def make(url: str, **extra: Any) -> Sampler:
        if request.param == "threads":
            return HttpClient(config(url, **extra)).sample
        found = loop_client(url, **extra)
        return lambda seq: run_to_end(found.exchange(seq))

    return make


def test_an_expected_status_is_ok_and_names_the_site(
    http_server: Server, client: Callable[..., Sampler]
) -> None:
    base, seen = http_server({"/health": (200, {"X-Drills-Site": "a"}, "ready")})
    sample = client(f"{base}/health")(1)
    assert (sample.outcome, sample.detail, sample.tags) == (Outcome.OK, "", {"site": "a"})
    assert seen == [("GET", "/health", "")]


def test_an_unexpected_status_fails_with_the_start_of_the_body(
    http_server: Server, client: Callable[..., Sampler]
) -> None:
    base, _ = http_server({"/health": (503, {"X-Drills-Site": "b"}, "down for maintenance")})
    sample = client(f"{base}/health")(1)
    assert sample.outcome is Outcome.FAIL
    assert sample.detail == "HTTP 503: down for maintenance"
    assert sample.tags == {"site": "b"}


def test_expected_statuses_and_body_pattern_are_the_scenarios(
    http_server: Server, client: Callable[..., Sampler]
) -> None:
    base, _ = http_server({"/gone": (404, {}, "not here"), "/page": (200, {}, "status: busy")})
    assert client(f"{base}/gone", expect=[200, 404])(1).outcome is Outcome.OK
    mismatch = client(f"{base}/page", body="status: (ok|idle)")(1)
    assert mismatch.outcome is Outcome.FAIL
    assert mismatch.detail == "body does not match 'status: (ok|idle)'"
    assert mismatch.tags is None


def test_a_refused_connection_or_a_slow_answer_fails(
    http_server: Server, closed_port: int, client: Callable[..., Sampler]
) -> None:
    refused = client(f"http://127.0.0.1:{closed_port}/")(1)
    assert refused.outcome is Outcome.FAIL
    assert refused.detail == "ConnectionError: [Errno 111] Connection refused"
    base, _ = http_server({"/slow": (200, {"delay": "0.5"}, "late")})
    slow = client(f"{base}/slow")(2)
    assert slow.outcome is Outcome.FAIL
    assert slow.detail == "ReadTimeout: Read timed out"


def test_a_post_sends_an_empty_body_and_the_query_is_kept(
    http_server: Server, client: Callable[..., Sampler]
) -> None:
    base, seen = http_server({"/orders": (200, {}, "")})
    assert client(f"{base}/orders?from=drills", method="POST")(1).outcome is Outcome.OK
    assert seen == [("POST", "/orders?from=drills", "")]


def test_the_client_reconnects_after_a_failure(http_server: Server) -> None:
    base, _ = http_server({"/slow": (200, {"delay": "0.5"}, ""), "/fast": (200, {}, "")})
    probe = HttpClient(config(f"{base}/slow"))
    session = probe.session
    assert probe.sample(1).outcome is Outcome.FAIL
    assert probe.session is not session  # a broken keep-alive connection is not reused


def test_the_loop_client_keeps_its_connection_alive_and_replaces_a_broken_one(
    http_server: Server,
) -> None:
    base, seen = http_server({"/health": (200, {}, "ok")}, keep_alive=True)
    probe = loop_client(f"{base}/health")
    assert run_to_end(probe.exchange(1)).outcome is Outcome.OK
    kept = probe.sock
    assert kept is not None
    assert run_to_end(probe.exchange(2)).outcome is Outcome.OK
    assert probe.sock is kept
    kept.shutdown(socket.SHUT_RDWR)  # as a server closing an idle connection would look
    assert run_to_end(probe.exchange(3)).outcome is Outcome.OK
    assert probe.sock is not kept
    assert len(seen) == 3


def test_the_loop_takes_plain_http_to_an_address_and_threads_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def engine(url: str, **extra: Any) -> bool:
        return HttpProbe("web", config(url, **extra), "run").loop_client() is not None

    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert engine("http://127.0.0.1:8080/health")
    assert engine("http://[::1]:8080/")
    assert not engine("https://127.0.0.1:8443/")  # certificates are checked as requests does
    assert not engine("http://localhost:8080/")  # a name is looked up on a thread
    assert not engine("http://user:pw@127.0.0.1:8080/")  # requests turns them into a header
    assert not engine("http://127.0.0.1:8080/", headers={"Accept-Encoding": "br"})
    assert not engine("http://127.0.0.1:8080/", proxy="http://127.0.0.1:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    assert engine("http://127.0.0.1:8080/")  # proxy variables are ignored unless asked
    assert not engine("http://127.0.0.1:8080/", proxy="env")  # requests would use the proxy
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert engine("http://127.0.0.1:8080/", proxy="env")  # a proxy for https only
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert engine("http://127.0.0.1:8080/", proxy="env")
