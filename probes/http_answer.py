"""What the event-loop `http` client (probes.http_loop) needs from requests, so that it sends and
judges exactly as the threaded client (probes.http) does: the request requests would send, its
cookies, its redirect rules, and the answer decoded as `Response.text` decodes it."""

from __future__ import annotations

import http.client
import zlib
from urllib.parse import urljoin, urlsplit

import requests
import requests.cookies
import requests.utils

REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 30  # requests' own limit
DECODED = {"gzip", "deflate", "identity"}  # what the loop can undo itself


class AnswerError(Exception):
    """The answer could not be read as requests would have read it: the sample fails."""


def host_header(url: str) -> str:
    """The Host header urllib3 sends: the address, and the port unless it is 80."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if parts.port in (None, 80) else f"{host}:{parts.port}"


def prepared(
    session: requests.Session, method: str, url: str, headers: dict[str, str]
) -> requests.PreparedRequest:
    """The request requests would send, its session's cookies included."""
    return session.prepare_request(requests.Request(method, url, headers=headers))


def only_decodable(request: requests.PreparedRequest) -> bool:
    asked = request.headers.get("Accept-Encoding", "")
    return {part.strip().lower() for part in asked.split(",") if part.strip()} <= DECODED


def joined(fields: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Response headers by lower-case name, repeated ones joined with ", " (as urllib3 does)."""
    found: dict[str, str] = {}
    for name, value in fields:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        found[key] = f"{found[key]}, {text}" if key in found else text
    return found


def keep_cookies(
    session: requests.Session,
    request: requests.PreparedRequest,
    fields: list[tuple[bytes, bytes]],
) -> bool:
    """Put the answer's cookies in the session's jar, as requests does; whether there were."""
    message = http.client.HTTPMessage()
    for name, value in fields:
        if name.lower() in (b"set-cookie", b"set-cookie2"):
            message[name.decode("latin-1")] = value.decode("latin-1")
    if not message.keys():
        return False
    answer = requests.cookies.MockResponse(message)
    session.cookies.extract_cookies(answer, requests.cookies.MockRequest(request))  # type: ignore[arg-type]
    return True


def next_hop(status: int, headers: dict[str, str], url: str, method: str) -> tuple[str, str] | None:
    """The URL and method requests would follow this answer with (None: not a redirect)."""
    location = headers.get("location")
    if status not in REDIRECTS or location is None:
        return None
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method = "GET"
    return urljoin(url, requests.utils.requote_uri(location)), method


def decoded(headers: dict[str, str], body: bytes) -> bytes:
    """The body with its Content-Encoding undone, as urllib3 undoes it."""
    for coding in reversed(
        [c.strip().lower() for c in headers.get("content-encoding", "").split(",")]
    ):
        try:
            if coding == "gzip":
                body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
            elif coding == "deflate":
                body = _inflate(body)
        except zlib.error as exc:
            raise AnswerError(
                f"ContentDecodingError: Received response with content-encoding: {coding}, "
                f"but failed to decode it. {exc}"
            ) from None
    return body


def _inflate(body: bytes) -> bytes:
    try:
        return zlib.decompress(body)
    except zlib.error:  # raw deflate, without the zlib header (urllib3 accepts both)
        return zlib.decompress(body, -zlib.MAX_WBITS)


def text(status: int, headers: dict[str, str], body: bytes) -> str:
    """The body as `requests.Response.text` gives it (declared charset, or a guess)."""
    answer = requests.Response()
    answer.status_code = status
    answer.headers = requests.structures.CaseInsensitiveDict(headers)
    answer._content = body
    answer.encoding = requests.utils.get_encoding_from_headers(answer.headers)
    return answer.text
