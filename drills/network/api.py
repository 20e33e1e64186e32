"""Toxiproxy's HTTP API, the subset drills' proxy implements, so Toxiproxy clients can drive it.

Routes: GET /version; GET, POST /proxies; GET, POST, DELETE /proxies/NAME; GET, POST
/proxies/NAME/toxics; GET, POST, DELETE /proxies/NAME/toxics/TOXIC; POST /reset.

Every request, GETs too, passes `drills.network.gate` first: Host header, bearer token,
JSON content type.
"""

from __future__ import annotations

import json
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from drills import __version__
from drills.network.addresses import AddressRefused, split_endpoint
from drills.network.gate import Gate, Refusal
from drills.network.proxy import Proxy, ProxyError
from drills.network.toxics import Toxic

_PROXY = re.compile(r"^/proxies/([^/]+)$")
_TOXICS = re.compile(r"^/proxies/([^/]+)/toxics$")
_TOXIC = re.compile(r"^/proxies/([^/]+)/toxics/([^/]+)$")


def _address(text: str) -> tuple[str, int]:
    return split_endpoint(f"127.0.0.1{text}" if text.startswith(":") else text)


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def _send(
        self, status: HTTPStatus, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data = json.loads(self.rfile.read(length))
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    def _dispatch(self, method: str) -> None:
        refusal = self.server.gate.refusal(self.headers)
        if refusal is not None:
            self._refuse(refusal)
            return
        proxy = self.server.proxy
        path = self.path.split("?")[0].rstrip("/") or "/"
        try:
            status, body = self._route(proxy, method, path)
        except AddressRefused as exc:
            status, body = HTTPStatus.FORBIDDEN, {"error": str(exc), "status": 403}
        except ProxyError as exc:
            missing = "no link" in str(exc) or "no toxic" in str(exc)
            status = HTTPStatus.NOT_FOUND if missing else HTTPStatus.CONFLICT
            body = {"error": str(exc), "status": int(status)}
        except (ValueError, KeyError, TypeError) as exc:
            body = {"error": f"bad request: {exc}", "status": 400}
            status = HTTPStatus.BAD_REQUEST
        self._send(status, body)

    def _refuse(self, refusal: Refusal) -> None:
        self.close_connection = True  # the body, if any, is left unread
        body = {"error": refusal.message, "status": int(refusal.status)}
        self._send(refusal.status, body, refusal.headers)

    def _route(self, proxy: Proxy, method: str, path: str) -> tuple[HTTPStatus, Any]:
        if path == "/version" and method == "GET":
            return HTTPStatus.OK, {"version": f"drills-proxy {__version__}"}
        if path == "/reset" and method == "POST":
            proxy.reset()
            return HTTPStatus.NO_CONTENT, None
        if path == "/proxies":
            if method == "GET":
                return HTTPStatus.OK, proxy.snapshot()
            if method == "POST":
                body = self._body()
                name = str(body["name"])
                proxy.add_link(
                    name,
                    _address(str(body["upstream"])),
                    _address(str(body.get("listen", "127.0.0.1:0"))),
                )
                if body.get("enabled") is False:
                    proxy.set_enabled(name, False)
                return HTTPStatus.CREATED, proxy.snapshot()[name]
        if match := _PROXY.match(path):
            name = match.group(1)
            if method == "GET":
                return HTTPStatus.OK, self._link(proxy, name)
            if method in ("POST", "PATCH"):
                body = self._body()
                if "enabled" in body:
                    proxy.set_enabled(name, bool(body["enabled"]))
                return HTTPStatus.OK, self._link(proxy, name)
            if method == "DELETE":
                proxy.remove_link(name)
                return HTTPStatus.NO_CONTENT, None
        if match := _TOXICS.match(path):
            name = match.group(1)
            if method == "GET":
                return HTTPStatus.OK, self._link(proxy, name)["toxics"]
            if method == "POST":
                toxic = Toxic.from_json(self._body())
                proxy.add_toxic(name, toxic)
                return HTTPStatus.OK, toxic.to_json()
        if match := _TOXIC.match(path):
            name, toxic_name = match.groups()
            toxics = {t["name"]: t for t in self._link(proxy, name)["toxics"]}
            if toxic_name not in toxics:
                raise ProxyError(f"link {name}: no toxic named {toxic_name!r}")
            if method == "GET":
                return HTTPStatus.OK, toxics[toxic_name]
            if method == "DELETE":
                proxy.remove_toxic(name, toxic_name)
                return HTTPStatus.NO_CONTENT, None
            if method in ("POST", "PATCH"):
                merged = {**toxics[toxic_name], **self._body(), "name": toxic_name}
                proxy.remove_toxic(name, toxic_name)
                proxy.add_toxic(name, Toxic.from_json(merged))
                return HTTPStatus.OK, merged
        return HTTPStatus.NOT_FOUND, {"error": f"no route {method} {path}", "status": 404}

    @staticmethod
    def _link(proxy: Proxy, name: str) -> dict[str, Any]:
        links = proxy.snapshot()
        if name not in links:
            raise ProxyError(f"no link named {name!r}")
        return links[name]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, proxy: Proxy, address: tuple[str, int] = ("127.0.0.1", 0), *, token: str
    ) -> None:
        proxy.policy.check_listen(address[0])
        super().__init__(address, _Handler)
        self.proxy = proxy
        self.gate = Gate(token, address[0])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="proxy-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
