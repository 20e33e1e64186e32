"""Drive a Toxiproxy server (or `drills proxy`, which speaks the same API) over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from drills.network.proxy import ProxyError
from drills.network.tokens import client_token
from drills.network.toxics import Toxic

TIMEOUT_S = 5.0


class ToxiproxyClient:
    """A LinkControl whose links are the proxies of a Toxiproxy server.

    Sends `token` (default: `DRILLS_PROXY_TOKEN`) as a bearer token on every request: `drills
    proxy` requires it; a real Toxiproxy ignores it.
    """

    def __init__(
        self,
        url: str,
        on_change: Callable[[str, str, int], None] | None = None,
        token: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment: the token stays here
        bearer = client_token(token)
        if bearer:
            self.session.headers["Authorization"] = f"Bearer {bearer}"
        self.on_change = on_change  # told after the server confirmed each change

    def _changed(self, link: str, change: str) -> None:
        if self.on_change is not None:
            self.on_change(link, change, time.monotonic_ns())

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self.session.request(
                method, f"{self.url}{path}", json=body, timeout=TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise ProxyError(f"toxiproxy at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("error", response.text)
            except ValueError:
                detail = response.text
            raise ProxyError(f"toxiproxy {method} {path}: {response.status_code} {detail}".strip())
        return response.json() if response.content else None

    def version(self) -> str:
        response = self.session.get(f"{self.url}/version", timeout=TIMEOUT_S)
        return response.text.strip()

    def proxies(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/proxies")
        return result

    def create(self, name: str, listen: str, upstream: str) -> dict[str, Any]:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        result: dict[str, Any] = self._call("POST", "/proxies", body)
        return result

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def set_enabled(self, link: str, enabled: bool) -> None:
        self._call("POST", f"/proxies/{link}", {"enabled": enabled})
        self._changed(link, "up" if enabled else "down")

    def add_toxic(self, link: str, toxic: Toxic) -> None:
        self._call("POST", f"/proxies/{link}/toxics", toxic.to_json())
        self._changed(link, f"+{toxic.type} {toxic.stream} {toxic.name} {toxic.attributes}")

    def remove_toxic(self, link: str, toxic: str) -> None:
        self._call("DELETE", f"/proxies/{link}/toxics/{toxic}")
        self._changed(link, f"-{toxic}")

    def heal(self, link: str) -> None:
        state = self._call("GET", f"/proxies/{link}")
        for toxic in state.get("toxics") or []:
            self.remove_toxic(link, str(toxic["name"]))
        if not state.get("enabled", True):
            self.set_enabled(link, True)

    def reset(self) -> None:
        self._call("POST", "/reset")
