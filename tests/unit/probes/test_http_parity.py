"""The event-loop `http` client (probes.http_loop) against the threaded one (probes.http,
requests) on answers a server of the test's own writes byte for byte: the same outcome, detail
and tags, and the same request on the wire."""

from __future__ import annotations

import gzip
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest

from drills.history import Outcome
from drills.probe import Sample, run_to_end
from probes.http import HttpClient, HttpConfig
from probes.http_loop import http_loop_client
from tests.unit.probes.raw_http import RawServer, Script, reply


def both(port: int, path: str = "/", **extra: Any) -> tuple[Sample, Sample]:
    """One sample from each client, the threaded one first."""
    spec = {"kind": "http", "url": f"http://127.0.0.1:{port}{path}", "timeout": "500ms", **extra}
    config = HttpConfig.model_validate(spec)
    loop = http_loop_client(config)
    assert loop is not None
    return HttpClient(config).sample(1), run_to_end(loop.exchange(1))


def same(pair: tuple[Sample, Sample]) -> Sample:
    threaded, loop = pair
    assert (loop.outcome, loop.detail, loop.tags) == (
        threaded.outcome,
        threaded.detail,
        threaded.tags,
    )
    return loop


def test_the_request_on_the_wire_is_the_same(serve: Callable[[Script], RawServer]) -> None:
    server = serve(reply("200 OK", {}))
    same(both(server.port, "/a b?x=1", method="POST", headers={"X-Drills": "1"}))
    assert server.heads[0].split(b"\r\n")[0] == server.heads[1].split(b"\r\n")[0]
    assert server.headers(0) == server.headers(1)
    assert server.headers(1)["host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    ("status", "headers", "body", "extra"),
    [
        ("200 OK", {"Content-Encoding": "gzip"}, gzip.compress(b"state: ready"), {"body": "ready"}),
        ("200 OK", {"Content-Type": "text/plain"}, "café".encode("latin-1"), {"body": "café"}),
        (
            "503 Service Unavailable",
            {"X-Drills-Site": "b", "Content-Type": "text/plain; charset=utf-8"},
            "débordé".encode(),
            {},
        ),
        ("200 OK", {"X-Drills-Site": "a", "Set-Cookie": "srv=a; Path=/"}, b"", {}),
    ],
)
def test_answers_are_judged_the_same(
    serve: Callable[[Script], RawServer],
    status: str,
    headers: dict[str, str],
    body: bytes,
    extra: dict[str, Any],
) -> None:
    server = serve(reply(status, headers, body))
    same(both(server.port, **extra))


def test_a_chunked_answer_and_a_head_request(serve: Callable[[Script], RawServer]) -> None:
    def chunked(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nup!\r\n0\r\n\r\n")

    assert same(both(serve(chunked).port, body="up!")).outcome is Outcome.OK
    ok = serve(reply("200 OK", {"Content-Length": "12"}))
    assert same(both(ok.port, method="HEAD")).outcome is Outcome.OK


def test_a_redirect_on_the_same_host_is_followed_and_a_post_becomes_a_get(
    serve: Callable[[Script], RawServer],
) -> None:
    def moved(conn: socket.socket, head: bytes) -> None:
        target = head.split(b" ")[1]
        if target == b"/old":
            reply("302 Found", {"Location": "/new"})(conn, head)
        else:
            reply("200 OK", {}, b"moved here")(conn, head)

    server = serve(moved)
    assert same(both(server.port, "/old", method="POST", body="moved")).outcome is Outcome.OK
    assert [h.split(b"\r\n")[0] for h in server.heads] == [
        b"POST /old HTTP/1.1",
        b"GET /new HTTP/1.1",
    ] * 2


def test_cookies_set_by_the_server_come_back_with_the_next_request(
    serve: Callable[[Script], RawServer],
) -> None:
    server = serve(reply("200 OK", {"Set-Cookie": "srv=a; Path=/"}))
    spec = {"kind": "http", "url": f"http://127.0.0.1:{server.port}/", "timeout": "500ms"}
    loop = http_loop_client(HttpConfig.model_validate(spec))
    assert loop is not None
    for seq in (1, 2):
        assert run_to_end(loop.exchange(seq)).outcome is Outcome.OK
    assert "cookie" not in server.headers(0)
    assert server.headers(1)["cookie"] == "srv=a"


def close_without_answer(conn: socket.socket, head: bytes) -> None:
    conn.close()


def reset(conn: socket.socket, head: bytes) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def cut_mid_body(conn: socket.socket, head: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conn.close()


@pytest.mark.parametrize("script", [close_without_answer, reset, cut_mid_body])
def test_a_broken_answer_fails_with_requests_words(
    serve: Callable[[Script], RawServer], script: Script
) -> None:
    sample = same(both(serve(script).port))
    assert sample.outcome is Outcome.FAIL
