"""How the HTTP probes reach a service is the scenario's to say (issue 18 item 4): the CA of a
server's certificate, a client certificate, redirects, and a proxy only when asked, never
because HTTP_PROXY is set."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drills.history import Outcome
from drills.probe import Sample, run_to_end
from probes.http import HttpClient, HttpConfig
from probes.http_loop import http_loop_client
from tests.unit.probes.raw_http import RawServer, Script, reply
from tests.unit.probes.tls import Authority


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


def https_server(authority: Authority, client_certs: bool) -> Iterator[int]:
    pem = authority.issue("server", server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem.cert, pem.key)
    if client_certs:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(authority.pem.cert)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def https(authority: Authority) -> Iterator[int]:
    yield from https_server(authority, client_certs=False)


@pytest.fixture
def mutual(authority: Authority) -> Iterator[int]:
    yield from https_server(authority, client_certs=True)


def sample(url: str, **extra: Any) -> Sample:
    config = HttpConfig.model_validate({"kind": "http", "url": url, "timeout": "2s", **extra})
    return HttpClient(config).sample(1)


def test_a_servers_certificate_is_checked_against_the_ca_given(
    https: int, authority: Authority
) -> None:
    url = f"https://127.0.0.1:{https}/"
    unknown = sample(url)
    assert unknown.outcome is Outcome.FAIL and unknown.detail.startswith("SSLError")
    assert sample(url, ca=str(authority.pem.cert)).outcome is Outcome.OK
    assert sample(url, verify=False).outcome is Outcome.OK


def test_the_scenarios_ca_wins_over_the_environments_with_proxy_env(
    https: int, authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # does not hold the test's CA
    found = sample(f"https://127.0.0.1:{https}/", ca=str(authority.pem.cert), proxy="env")
    assert (found.outcome, found.detail) == (Outcome.OK, "")


def test_a_client_certificate_opens_a_mutual_tls_service(mutual: int, authority: Authority) -> None:
    url = f"https://127.0.0.1:{mutual}/"
    ca = str(authority.pem.cert)
    assert sample(url, ca=ca).outcome is Outcome.FAIL
    client = authority.issue("client", server=False)
    found = sample(url, ca=ca, cert=str(client.cert), key=str(client.key))
    assert (found.outcome, found.detail) == (Outcome.OK, "")


def both(url: str, **extra: Any) -> list[Sample]:
    config = HttpConfig.model_validate({"kind": "http", "url": url, "timeout": "1s", **extra})
    loop = http_loop_client(config)
    assert loop is not None
    return [HttpClient(config).sample(1), run_to_end(loop.exchange(1))]


def test_redirects_are_not_followed_when_the_scenario_says_so(
    serve: Callable[[Script], RawServer],
) -> None:
    server = serve(reply("302 Found", {"Location": "/elsewhere"}))
    url = f"http://127.0.0.1:{server.port}/"
    for found in both(url, follow_redirects=False, expect=[302]):
        assert (found.outcome, found.detail) == (Outcome.OK, "")
    assert [h.split(b" ")[1] for h in server.heads] == [b"/", b"/"]


def test_a_proxy_is_used_only_when_the_scenario_names_one(
    serve: Callable[[Script], RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve(reply("200 OK", {}, b"via the proxy"))
    service = serve(reply("200 OK", {}, b"direct"))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = f"http://127.0.0.1:{service.port}/"
    for found in both(url, body="direct"):  # HTTP_PROXY alone changes nothing
        assert found.outcome is Outcome.OK
    assert proxy.heads == []
    assert sample(url, proxy=f"http://127.0.0.1:{proxy.port}", body="via").outcome is Outcome.OK
    assert sample(url, proxy="env", body="via").outcome is Outcome.OK
    assert [h.split(b" ")[1] for h in proxy.heads] == [url.encode()] * 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ca": "/nonexistent/ca.pem"}, "is not a file"),
        ({"proxy": "socks5://127.0.0.1:1080"}, "write none, env or an http"),
        ({"key": __file__}, "give `cert` too"),
        ({"ca": __file__, "verify": False}, "which `verify: false` skips"),
    ],
)
def test_settings_are_checked(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpConfig.model_validate({"kind": "http", "url": "https://127.0.0.1/", **extra})
