"""`http-write`: what may have been committed (unknown) and what certainly was not (fail)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from drills.errors import ProbeError
from drills.history import Outcome
from probes.http_write import HttpWriteConfig, HttpWriteProbe, filled
from tests.unit.probes.conftest import Routes

Server = Callable[[Routes], tuple[str, list[tuple[str, str, str]]]]


def probe(base: str, path: str = "/orders") -> HttpWriteProbe:
    spec = {"kind": "http-write", "url": f"{base}{path}", "verify_url": f"{base}/orders"}
    spec["timeout"] = "300ms"
    return HttpWriteProbe("orders", HttpWriteConfig.model_validate(spec), "run-1")


def test_a_2xx_is_ok_and_records_site_database_and_timeline(http_server: Server) -> None:
    answer = json.dumps({"id": 7, "db": "a", "timeline": 2})
    base, seen = http_server({"/orders": (201, {"X-Drills-Site": "b"}, answer)})
    sample = probe(base).client().sample(7)
    assert sample.outcome is Outcome.OK
    assert sample.tags == {"site": "b", "db": "a", "timeline": "2"}
    assert json.loads(seen[0][2]) == {"id": 7, "run": "run-1", "probe": "orders"}


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (422, "bad order", Outcome.FAIL),
        (503, "<h1>503</h1> No server is available to handle this request.", Outcome.FAIL),
        (503, json.dumps({"outcome": "fail", "error": "read-only"}), Outcome.FAIL),
        (503, json.dumps({"outcome": "unknown"}), Outcome.UNKNOWN),
        (503, "overloaded", Outcome.UNKNOWN),
        (502, "bad gateway", Outcome.UNKNOWN),
        (500, "", Outcome.UNKNOWN),
    ],
)
def test_an_error_answer_is_fail_only_when_nothing_was_done(
    http_server: Server, status: int, body: str, outcome: Outcome
) -> None:
    base, _ = http_server({"/orders": (status, {}, body)})
    sample = probe(base).client().sample(1)
    assert sample.outcome is outcome
    assert sample.detail.startswith(f"HTTP {status}")


def test_refused_is_fail_and_a_timeout_after_sending_is_unknown(
    http_server: Server, closed_port: int
) -> None:
    refused = probe(f"http://127.0.0.1:{closed_port}").client().sample(1)
    assert refused.outcome is Outcome.FAIL
    base, _ = http_server({"/orders": (201, {"delay": "0.5"}, "{}")})
    late = probe(base).client().sample(2)
    assert (late.outcome, late.detail) == (Outcome.UNKNOWN, "ReadTimeout: Read timed out")
    assert HttpWriteProbe.timeout_outcome is Outcome.UNKNOWN and HttpWriteProbe.writes


def test_the_final_read_asks_the_service_for_every_write_issued(http_server: Server) -> None:
    base, seen = http_server(
        {"/orders": (201, {}, "{}"), "/orders/1": (200, {}, "{}"), "/orders/3": (200, {}, "{}")}
    )
    writes = probe(base)
    client = writes.client()
    for seq in (1, 2, 3):
        client.sample(seq)
    assert writes.final_read() == {1: 1, 3: 1}  # /orders/2 answers 404: not there
    assert ("GET", "/orders/2?run=run-1&probe=orders", "") in seen


def test_a_final_read_the_service_keeps_refusing_is_an_error(http_server: Server) -> None:
    base, seen = http_server({"/orders": (201, {}, "{}"), "/orders/1": (503, {}, "busy")})
    writes = probe(base)
    writes.client().sample(1)
    with pytest.raises(ProbeError, match=r"/orders/1 failed 3 times: HTTP 503"):
        writes.final_read()
    assert len([s for s in seen if s[0] == "GET"]) == 3


def test_templates_take_the_writes_values_and_are_checked() -> None:
    values = {"id": 7, "run_id": "r 1/x", "probe": "entries"}
    assert filled('{"ref": "{run_id}/{id}", "n": {"q": 1}}', values) == (
        '{"ref": "r 1/x/7", "n": {"q": 1}}'
    )
    assert filled("http://h/e?ref={run_id}&n={id}", values, "url") == (
        "http://h/e?ref=r%201%2Fx&n=7"
    )
    assert filled('{"p": "{probe}"}', {"probe": 'a"b'}, "json") == '{"p": "a\\"b"}'
    base = {"kind": "http-write", "url": "http://127.0.0.1/e"}
    for extra, message in (
        ({"verify_url": "http://h/e", "body": "{run_id}"}, "body must hold {id} and {run_id}"),
        ({"verify_url": "http://h/e", "body": "{id}"}, "ids start again"),
        ({"verify_url": "http://h/e/{id}"}, "template must hold {id} and {run_id}"),
        ({"verify_url": "http://h/e", "verify_query": "SELECT 1, 1"}, "give that too"),
        ({"verify_dsn": "host=x", "verify_query": "SELECT 1, 1"}, "must hold :run_id"),
    ):
        with pytest.raises(ValidationError, match=message):
            HttpWriteConfig.model_validate({**base, **extra})
