"""The `dual-active` lab's reference service: a small order API, one instance per site.

    GET  /health      200 {"site": "a", "status": "ok"} while the process runs (the database
                      is not consulted: a site stays in rotation and answers 503 to writes
                      while it cannot reach a primary)
    POST /orders      {"id": 7, "run": R, "probe": P}
                      -> 201 {"id": 7, "site": "a", "db": "a", "timeline": 1}
    GET  /orders/ID?run=R&probe=P
                      -> 200 {"id", "site" (answering), "db", "served_by" (site that took
                         the order)} or 404

Orders are committed to PostgreSQL through a multi-host DSN (`target_session_attrs=read-write`:
whichever database is the primary). The answer names the site that served the request and the
database that committed it (its `cluster_name`), so that a client sees both sites serving and a
checker can tell when two databases accepted writes at once (split brain). Every response
carries `X-Drills-Site`. A failed write answers 503 with `"outcome"`: `fail` when the insert
certainly did not happen (no database), `unknown` when the connection broke mid-commit.

Run: python -m drills.refservice.orders --site a --listen 127.0.0.1:8001 --dsn '...'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS orders (run_id text NOT NULL, probe text NOT NULL, "
    "id bigint NOT NULL, site text NOT NULL, db text NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (run_id, probe, id))"
)
# One round trip: the insert, and which database (and timeline: a promoted standby starts a
# new one) committed it.
INSERT = (
    "WITH added AS (INSERT INTO orders (run_id, probe, id, site, db) VALUES (%s, %s, %s, %s, "
    "current_setting('cluster_name')) ON CONFLICT DO NOTHING RETURNING 1) "
    "SELECT current_setting('cluster_name'), pg_walfile_name(pg_current_wal_lsn())"
)
SELECT = "SELECT site, db FROM orders WHERE run_id = %s AND probe = %s AND id = %s"


class Pool:
    """A few reusable connections to whichever database is the primary now."""

    def __init__(self, dsn: str, size: int = 8, timeout_s: float = 1.0) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        self.idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue(size)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=max(1, int(self.timeout_s)),
            options=f"-c statement_timeout={int(self.timeout_s * 1000)}",
        )

    def get(self) -> psycopg.Connection[Any]:
        try:
            conn = self.idle.get_nowait()
            if not conn.closed:
                return conn
        except queue.Empty:
            pass
        return self.connect()

    def put(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
            return
        try:
            self.idle.put_nowait(conn)
        except queue.Full:
            conn.close()


class Service:
    def __init__(self, site: str, dsn: str) -> None:
        self.site = site
        self.pool = Pool(dsn)
        self.schema_ready = threading.Event()

    def ensure_schema(self, conn: psycopg.Connection[Any]) -> None:
        if not self.schema_ready.is_set():
            # The other site may create it at the same moment (pg_type's unique index).
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                conn.execute(SCHEMA)
            self.schema_ready.set()

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            run, probe, order = str(body["run"]), str(body.get("probe", "")), int(body["id"])
        except (KeyError, TypeError, ValueError):
            return 400, {"error": 'expected {"id": INT, "run": TEXT}'}
        try:
            conn = self.pool.get()
        except psycopg.Error as exc:
            return 503, {"error": _short(exc), "outcome": "fail", "site": self.site}
        try:
            self.ensure_schema(conn)
            row = conn.execute(INSERT, (run, probe, order, self.site)).fetchone()
        except psycopg.Error as exc:
            conn.close()
            # A lost connection or a shutdown after sending (SQLSTATE classes 08, 57, 58, or
            # none) may have committed; a definite error (read-only, constraint) did not.
            state = exc.sqlstate or ""
            broken = not state or state.startswith(("08", "57", "58"))
            outcome = "unknown" if broken else "fail"
            return 503, {"error": _short(exc), "outcome": outcome, "site": self.site}
        self.pool.put(conn)
        db, walfile = (str(row[0]), str(row[1])) if row else ("", "0")
        return 201, {"id": order, "site": self.site, "db": db, "timeline": int(walfile[:8], 16)}

    def read(self, order: int, run: str, probe: str) -> tuple[int, dict[str, Any]]:
        try:
            conn = self.pool.get()
            row = conn.execute(SELECT, (run, probe, order)).fetchone()
        except psycopg.Error as exc:
            return 503, {"error": _short(exc), "site": self.site}
        self.pool.put(conn)
        if row is None:
            return 404, {"id": order, "site": self.site}
        return 200, {"id": order, "site": self.site, "db": row[1], "served_by": row[0]}


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would drown the lab's log

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK add about 40 ms to every answer on a kept-alive link.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Drills-Site", service.site)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/health":
                self._answer(200, {"site": service.site, "status": "ok"})
            elif url.path.startswith("/orders/"):
                query = parse_qs(url.query)
                try:
                    order = int(url.path.rsplit("/", 1)[1])
                except ValueError:
                    self._answer(400, {"error": "order id is an integer"})
                    return
                run = query.get("run", [""])[0]
                probe = query.get("probe", [""])[0]
                self._answer(*service.read(order, run, probe))
            else:
                self._answer(404, {"error": f"no route {url.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if urlparse(self.path).path != "/orders":
                self._answer(404, {"error": "POST /orders only"})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._answer(400, {"error": "body is not JSON"})
                return
            self._answer(*service.create(body if isinstance(body, dict) else {}))

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="drills' reference order service (one site)")
    parser.add_argument("--site", required=True, help="the site this instance serves as")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--dsn", required=True, help="multi-host libpq DSN, read-write target")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), handler(Service(args.site, args.dsn)))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"orders service site {args.site} listening on {args.listen}", flush=True)
    server.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
