"""The proxy API refuses what a hostile web page or local user would send (issue 15, item 3)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from drills.errors import DrillsError
from drills.network.addresses import AddressPolicy, AddressRefused
from drills.network.api import ApiServer
from drills.network.proxy import Proxy, ProxyError
from drills.network.toxiproxy import ToxiproxyClient

TOKEN = "api-security-test-token-42"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ECHO_LIKE = "127.0.0.1:9"  # a loopback upstream; nothing connects to it in these tests


def _api(policy: AddressPolicy | None = None) -> Iterator[tuple[Proxy, ApiServer]]:
    with Proxy(policy=policy) as proxy:
        server = ApiServer(proxy, token=TOKEN)
        server.start()
        try:
            yield proxy, server
        finally:
            server.stop()


@pytest.fixture
def api() -> Iterator[tuple[Proxy, ApiServer]]:
    yield from _api()


@pytest.fixture
def allowing_everything() -> Iterator[tuple[Proxy, ApiServer]]:
    everything = ["0.0.0.0/0", "::/0", "169.254.169.254:80", "metadata.google.internal:80"]
    yield from _api(AddressPolicy.from_entries(everything))


def request(
    server: ApiServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    host: str | None = "127.0.0.1",
) -> tuple[int, dict[str, Any]]:
    """One raw request: the Host header and the body exactly as given."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        data = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        sent = {"Content-Length": str(len(data)), **(headers or {})}
        for key, value in sent.items():
            conn.putheader(key, value)
        conn.endheaders(data)
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else {}
    finally:
        conn.close()


def create(server: ApiServer, upstream: str, listen: str = "127.0.0.1:0") -> tuple[int, Any]:
    body = {"name": "db", "listen": listen, "upstream": upstream}
    headers = {**AUTH, "Content-Type": "application/json"}
    return request(server, "POST", "/proxies", body, headers)


# -- the token -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/version"), ("GET", "/proxies"), ("POST", "/reset"), ("DELETE", "/proxies/db")],
)
def test_every_request_without_the_token_gets_401(
    api: tuple[Proxy, ApiServer], method: str, path: str
) -> None:
    proxy, server = api
    proxy.add_link("db", ("127.0.0.1", 9))
    status, body = request(server, method, path)
    assert status == 401 and "token" in body["error"]
    assert "db" in proxy.links  # nothing happened


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer ", ""],
)
def test_a_wrong_token_gets_401(api: tuple[Proxy, ApiServer], authorization: str) -> None:
    _, server = api
    status, _ = request(
        server,
        "POST",
        "/proxies",
        {"name": "db", "upstream": ECHO_LIKE},
        {"Authorization": authorization, "Content-Type": "application/json"},
    )
    assert status == 401


def test_the_right_token_is_served(api: tuple[Proxy, ApiServer]) -> None:
    proxy, server = api
    status, body = create(server, ECHO_LIKE)
    assert status == 201 and body["upstream"] == ECHO_LIKE
    assert request(server, "GET", "/proxies", headers=AUTH)[0] == 200
    assert "db" in proxy.links


def test_the_server_needs_a_token() -> None:
    with Proxy() as proxy, pytest.raises(TypeError):
        ApiServer(proxy)  # type: ignore[call-arg]


# -- the Host header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8474", "127.0.0.1.nip.io", "10.0.0.1", "localhost.evil"]
)
def test_another_host_is_refused_even_with_the_token(
    api: tuple[Proxy, ApiServer], host: str
) -> None:
    _, server = api
    status, body = request(server, "GET", "/proxies", headers=AUTH, host=host)
    assert status == 421 and "Host" in body["error"]


def test_a_request_without_host_is_refused(api: tuple[Proxy, ApiServer]) -> None:
    _, server = api
    assert request(server, "GET", "/proxies", headers=AUTH, host=None)[0] == 400


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8474", "localhost", "LOCALHOST.", "[::1]:1"]
)
def test_loopback_names_are_served(api: tuple[Proxy, ApiServer], host: str) -> None:
    _, server = api
    assert request(server, "GET", "/proxies", headers=AUTH, host=host)[0] == 200


# -- the content type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_declared_json_gets_415(
    api: tuple[Proxy, ApiServer], content_type: str | None
) -> None:
    proxy, server = api
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = {"name": "db", "upstream": ECHO_LIKE}
    status, answer = request(server, "POST", "/proxies", body, headers)
    assert status == 415 and "application/json" in answer["error"]
    assert proxy.links == {}


def test_json_with_a_charset_is_json(api: tuple[Proxy, ApiServer]) -> None:
    _, server = api
    headers = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    body = {"name": "db", "upstream": ECHO_LIKE}
    assert request(server, "POST", "/proxies", body, headers)[0] == 201


def test_chunked_and_oversized_bodies_are_refused(api: tuple[Proxy, ApiServer]) -> None:
    _, server = api
    json_auth = {**AUTH, "Content-Type": "application/json"}
    chunked = {**json_auth, "Transfer-Encoding": "chunked"}
    assert request(server, "POST", "/reset", None, chunked)[0] == 411
    big = {**json_auth, "Content-Length": str(10 * 1024 * 1024)}
    assert request(server, "POST", "/proxies", None, big)[0] == 413


# -- upstreams and listen addresses -------------------------------------------------------


@pytest.mark.parametrize(
    "upstream",
    [
        "169.254.169.254:80",
        "[fd00:ec2::254]:80",
        "[::ffff:169.254.169.254]:80",
        "[64:ff9b::a9fe:a9fe]:80",
        "metadata.google.internal:80",
        "169.254.1.1:5432",
        "[fe80::1]:5432",
        "100.100.100.200:80",
    ],
)
def test_metadata_and_link_local_upstreams_are_refused_even_when_allowed(
    allowing_everything: tuple[Proxy, ApiServer], upstream: str
) -> None:
    proxy, server = allowing_everything
    status, body = create(server, upstream)
    assert status == 403, body
    assert "refused" in body["error"]
    assert proxy.links == {}


@pytest.mark.parametrize("upstream", ["10.0.0.5:5432", "192.168.1.10:80", "[2001:db8::1]:5432"])
def test_an_upstream_outside_loopback_is_refused_without_an_allow_list(
    api: tuple[Proxy, ApiServer], upstream: str
) -> None:
    proxy, server = api
    status, body = create(server, upstream)
    assert status == 403 and "--allow-upstream" in body["error"]
    assert proxy.links == {}


def test_the_allow_list_lets_an_upstream_through() -> None:
    for entries in (["10.0.0.0/8"], ["10.0.0.5"], ["10.0.0.5:5432"]):
        for _, server in _api(AddressPolicy.from_entries(entries)):
            assert create(server, "10.0.0.5:5432")[0] == 201
    for _, server in _api(AddressPolicy.from_entries(["10.0.0.5:5432"])):
        assert create(server, "10.0.0.5:5433")[0] == 403  # HOST:PORT means that port only


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0"])
def test_a_wildcard_listen_is_refused_unless_allowed(
    api: tuple[Proxy, ApiServer], listen: str
) -> None:
    proxy, server = api
    status, body = create(server, ECHO_LIKE, listen)
    assert status == 403 and "every address" in body["error"]
    assert proxy.links == {}
    for _, server in _api(AddressPolicy(wildcard_listen=True)):
        if listen != "[::]:0":  # the test machine may lack IPv6
            assert create(server, ECHO_LIKE, listen)[0] == 201


def test_the_api_itself_refuses_a_wildcard_address() -> None:
    with Proxy() as proxy, pytest.raises(AddressRefused, match="every address"):
        ApiServer(proxy, ("0.0.0.0", 0), token=TOKEN)
    assert issubclass(AddressRefused, DrillsError)


def test_a_wildcard_api_serves_ip_literals_but_not_names() -> None:
    with Proxy(policy=AddressPolicy(wildcard_listen=True)) as proxy:
        server = ApiServer(proxy, ("0.0.0.0", 0), token=TOKEN)
        server.start()
        try:
            assert request(server, "GET", "/proxies", headers=AUTH, host="10.1.2.3:80")[0] == 200
            assert request(server, "GET", "/proxies", headers=AUTH, host="evil.example")[0] == 421
        finally:
            server.stop()


# -- drills' own client -------------------------------------------------------------------


def test_drills_client_sends_the_token_from_the_environment(
    api: tuple[Proxy, ApiServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = api
    monkeypatch.delenv("DRILLS_PROXY_TOKEN", raising=False)
    with pytest.raises(ProxyError, match="401"):
        ToxiproxyClient(server.url).proxies()
    monkeypatch.setenv("DRILLS_PROXY_TOKEN", TOKEN)
    assert ToxiproxyClient(server.url).proxies() == {}
    monkeypatch.setenv("DRILLS_PROXY_TOKEN", "not-the-token-at-all")
    assert ToxiproxyClient(server.url, token=TOKEN).proxies() == {}  # the scenario's wins
