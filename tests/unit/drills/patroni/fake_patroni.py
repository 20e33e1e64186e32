"""A tiny HTTP server in a thread that answers like Patroni's REST API: /cluster, /patroni,
/switchover, /failover and PATCH /config, with basic authentication on the requests that change
things."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AUTH = ("drills", "pw-for-tests")


@dataclass
class State:
    members: list[str] = field(default_factory=lambda: ["pg1", "pg2"])
    leader: str | None = "pg1"
    paused: bool = False
    refuse: tuple[int, str] | None = None  # status and text for every change request
    stuck: bool = False  # accept a switchover but never change the leader
    lagging: int = 0  # GET /patroni answers with the old pause state this many times more
    member_paused: bool = False  # what GET /patroni says
    requests: list[tuple[str, str, Any, str | None]] = field(default_factory=list)

    def cluster(self) -> dict[str, Any]:
        members = [
            {
                "name": name,
                "role": "leader" if name == self.leader else "replica",
                "state": "running",
                "api_url": f"http://x/{name}/patroni",
                "timeline": 1,
                **({} if name == self.leader else {"lag": 0}),
            }
            for name in self.members
        ]
        return {"members": members, **({"pause": True} if self.paused else {})}


class Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/cluster":
            self.reply(200, self.state.cluster())
        elif self.path == "/patroni":
            if self.state.lagging > 0:
                self.state.lagging -= 1
            else:
                self.state.member_paused = self.state.paused
            paused = {"pause": True} if self.state.member_paused else {}
            self.reply(200, {"state": "running", "role": "primary", **paused})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        self.change()

    def do_PATCH(self) -> None:
        self.change()

    def change(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        auth = self.headers.get("Authorization")
        self.state.requests.append((self.command, self.path, body, auth))
        expected = "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()
        if auth != expected:
            self.reply(401, "no auth header received")
            return
        if self.state.refuse is not None:
            self.reply(*self.state.refuse)
            return
        if self.path == "/config":
            self.state.paused = bool(body.get("pause"))
            self.reply(200, {"pause": self.state.paused})
        elif self.path in ("/switchover", "/failover"):
            self.switch(body)
        else:
            self.reply(404, "not found")

    def switch(self, body: dict[str, Any]) -> None:
        candidate = body.get("candidate")
        if candidate is not None and candidate not in self.state.members:
            self.reply(412, f"candidate name does not match with {candidate}")
            return
        new = candidate or next(m for m in self.state.members if m != self.state.leader)
        if not self.state.stuck:
            self.state.leader = new
        self.reply(200, f'Successfully switched over to "{new}"')

    def reply(self, status: int, payload: Any) -> None:
        data = (json.dumps(payload) if not isinstance(payload, str) else payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def fake_patroni(state: State) -> Iterator[str]:
    """Serve `state` on a free loopback port; yield its base URL."""
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
