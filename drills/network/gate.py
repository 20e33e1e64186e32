"""What a request to the proxy API must show before it is routed.

In order: a Host header naming the address the API listens on or a loopback name (400 without
one, 421 for another: a web page whose name was re-pointed at 127.0.0.1, "DNS rebinding", is
refused); the bearer token (401), on every request, reads too, since the link list shows the
upstreams; and a body only as `Content-Type: application/json`, with a length, of at most
`MAX_BODY` bytes (415, 411, 413). The API sends no CORS headers, so a browser can neither send
the token cross-origin nor read an answer.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus

from drills.network.addresses import LOOPBACK_NAMES, is_wildcard, normal_host

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Refusal:
    status: HTTPStatus
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def host_name(header: str) -> str:
    """The name in a Host header, without its port."""
    text = header.strip()
    if text.startswith("["):
        return normal_host(text[1 : text.find("]")] if "]" in text else text)
    name, sep, port = text.rpartition(":")
    return normal_host(name if sep and port.isdigit() else text)


class Gate:
    def __init__(self, token: str, listen_host: str) -> None:
        self._token = token.encode()
        self._wildcard = is_wildcard(listen_host)
        self._names = LOOPBACK_NAMES | {normal_host(listen_host)}

    def refusal(self, headers: Message) -> Refusal | None:
        return self._host(headers) or self._bearer(headers) or self._body(headers)

    def host_allowed(self, header: str) -> bool:
        name = host_name(header)
        if name in self._names:
            return True
        # Listening on every address: any IP literal (a literal cannot be re-pointed).
        return self._wildcard and _is_ip(name)

    def _host(self, headers: Message) -> Refusal | None:
        values = headers.get_all("Host") or []
        if len(values) != 1:
            return Refusal(HTTPStatus.BAD_REQUEST, "exactly one Host header, please")
        if not self.host_allowed(values[0]):
            return Refusal(
                HTTPStatus.MISDIRECTED_REQUEST,
                f"Host {values[0]!r} is not this API's address (use the address it listens on)",
            )
        return None

    def _bearer(self, headers: Message) -> Refusal | None:
        scheme, _, given = (headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token):
            return None
        return Refusal(
            HTTPStatus.UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer TOKEN",
            {"WWW-Authenticate": 'Bearer realm="drills-proxy"'},
        )

    def _body(self, headers: Message) -> Refusal | None:
        if headers.get("Transfer-Encoding"):
            return Refusal(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        length = (headers.get("Content-Length") or "0").strip()
        if not length.isdigit():
            return Refusal(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length!r}")
        if int(length) > MAX_BODY:
            return Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        declared = headers.get("Content-Type") is not None
        if (int(length) or declared) and headers.get_content_type() != "application/json":
            return Refusal(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "a body must be Content-Type: application/json"
            )
        return None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
