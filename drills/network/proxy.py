"""A TCP fault proxy on asyncio, one listener per link, controlled from other threads.

The proxy runs its own event loop in a daemon thread. Every change to a link takes effect
inside that loop, and is reported to `on_change` with the monotonic time at which it took
effect, so a history can shade fault intervals exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from drills.errors import DrillsError
from drills.network.toxics import STREAMS, Stream, Toxic

T = TypeVar("T")
CHUNK = 65536
ChangeHook = Callable[[str, str, int], None]  # link, change, monotonic ns


class ProxyError(DrillsError):
    """The proxy could not do what it was asked."""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN, as a crashed peer or a dropped route would look."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    started: float = 0.0
    rolls: dict[str, bool] = field(default_factory=dict)  # toxic name -> applies to this conn
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: bool = False

    def applies(self, toxic: Toxic) -> bool:
        if toxic.name not in self.rolls:
            self.rolls[toxic.name] = random.random() < toxic.toxicity
        return self.rolls[toxic.name]

    def reset(self) -> None:
        if self.closed:
            return
        self.closed = True
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)
        for task in self.tasks:
            task.cancel()


@dataclass(eq=False)
class Link:
    name: str
    listen_host: str
    listen_port: int
    upstream_host: str
    upstream_port: int
    enabled: bool = True
    toxics: dict[str, Toxic] = field(default_factory=dict)
    conns: set[_Conn] = field(default_factory=set)
    server: asyncio.Server | None = None
    changed: asyncio.Condition | None = None

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"

    @property
    def upstream(self) -> str:
        return f"{self.upstream_host}:{self.upstream_port}"

    def active(self, kind: str, stream: Stream, conn: _Conn) -> list[Toxic]:
        return [
            t
            for t in self.toxics.values()
            if t.type == kind and t.stream == stream and conn.applies(t)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics.values()],
        }


class Proxy:
    def __init__(self, on_change: ChangeHook | None = None) -> None:
        self.on_change = on_change
        self.links: dict[str, Link] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault-proxy", daemon=True
        )
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if not self._started:
            self._thread.start()
            self._started = True

    def stop(self) -> None:
        if not self._started:
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._started = False

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if not self._started:
            coro.close()
            raise ProxyError("the proxy is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def _record(self, link: str, change: str) -> None:
        if self.on_change is not None:
            self.on_change(link, change, time.monotonic_ns())

    # -- control (thread-safe) -------------------------------------------------------------
    def add_link(
        self, name: str, upstream: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0)
    ) -> int:
        """Create a link listening on `listen` (port 0: a free one); return its port."""
        return self._call(self._add_link(name, upstream, listen))

    def remove_link(self, name: str) -> None:
        self._call(self._remove_link(name))

    def set_enabled(self, name: str, enabled: bool) -> None:
        self._call(self._set_enabled(name, enabled))

    def add_toxic(self, name: str, toxic: Toxic) -> None:
        self._call(self._add_toxic(name, toxic))

    def remove_toxic(self, name: str, toxic: str) -> None:
        self._call(self._remove_toxic(name, toxic))

    def heal(self, name: str) -> None:
        """Enable the link and remove every toxic from it."""
        self._call(self._heal(name))

    def reset(self) -> None:
        """Heal every link (Toxiproxy's POST /reset)."""
        for name in list(self.links):
            self.heal(name)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return self._call(self._snapshot())

    def connections(self, name: str) -> int:
        return self._call(self._count(name))

    # -- inside the loop ------------------------------------------------------------------
    def _link(self, name: str) -> Link:
        try:
            return self.links[name]
        except KeyError:
            raise ProxyError(f"no link named {name!r}") from None

    async def _snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: link.to_json() for name, link in self.links.items()}

    async def _count(self, name: str) -> int:
        return len(self._link(name).conns)

    async def _add_link(self, name: str, upstream: tuple[str, int], listen: tuple[str, int]) -> int:
        if name in self.links:
            raise ProxyError(f"link {name!r} exists already")
        link = Link(name, listen[0], listen[1], upstream[0], upstream[1])
        link.changed = asyncio.Condition()
        await self._listen(link)
        self.links[name] = link
        self._record(name, f"created {link.listen} -> {link.upstream}")
        return link.listen_port

    async def _listen(self, link: Link) -> None:
        try:
            link.server = await asyncio.start_server(
                lambda r, w: self._accept(link, r, w),
                link.listen_host,
                link.listen_port,
                reuse_address=True,
            )
        except OSError as exc:
            raise ProxyError(f"link {link.name}: cannot listen on {link.listen}: {exc}") from exc
        link.listen_port = int(link.server.sockets[0].getsockname()[1])

    async def _remove_link(self, name: str) -> None:
        link = self._link(name)
        await self._close(link)
        del self.links[name]
        self._record(name, "removed")

    async def _close(self, link: Link) -> None:
        # Reset first: from Python 3.12.1 wait_closed() waits for every accepted connection.
        server, link.server = link.server, None
        for conn in list(link.conns):
            conn.reset()
        link.conns.clear()
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _set_enabled(self, name: str, enabled: bool) -> None:
        link = self._link(name)
        if enabled == link.enabled:
            return
        if enabled:
            await self._listen(link)
            link.enabled = True
            self._record(name, "up")
        else:
            link.enabled = False
            await self._close(link)
            self._record(name, "down")

    async def _add_toxic(self, name: str, toxic: Toxic) -> None:
        link = self._link(name)
        if toxic.name in link.toxics:
            raise ProxyError(f"link {name}: toxic {toxic.name!r} exists already")
        link.toxics[toxic.name] = toxic
        self._record(name, f"+{toxic.type} {toxic.stream} {toxic.name} {toxic.attributes}")
        if _closes(toxic):
            for conn in list(link.conns):
                self._schedule_reset(link, conn, toxic)
        await self._notify(link)

    async def _remove_toxic(self, name: str, toxic: str) -> None:
        link = self._link(name)
        if link.toxics.pop(toxic, None) is None:
            raise ProxyError(f"link {name}: no toxic named {toxic!r}")
        self._record(name, f"-{toxic}")
        await self._notify(link)

    async def _heal(self, name: str) -> None:
        link = self._link(name)
        for toxic in list(link.toxics):
            await self._remove_toxic(name, toxic)
        await self._set_enabled(name, True)

    async def _shutdown(self) -> None:
        for link in list(self.links.values()):
            await self._close(link)
        # Connection handlers unwind once their connections are reset: let them finish (a
        # cancelled handler makes asyncio's stream callback log a traceback), then cancel any
        # that did not, so that none is destroyed pending.
        current = asyncio.current_task()
        pending = {t for t in asyncio.all_tasks() if t is not current}
        if pending:
            _, late = await asyncio.wait(pending, timeout=1.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _notify(self, link: Link) -> None:
        assert link.changed is not None
        async with link.changed:
            link.changed.notify_all()

    def _schedule_reset(self, link: Link, conn: _Conn, toxic: Toxic) -> None:
        if not conn.applies(toxic):
            return
        delay = toxic.attr("timeout") / 1000

        def fire() -> None:
            if toxic.name in link.toxics:
                conn.reset()
                link.conns.discard(conn)

        self._loop.call_later(delay, fire)

    # -- the data path ----------------------------------------------------------------------
    async def _accept(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = _Conn(client=writer, started=self._loop.time())
        if not link.enabled:
            conn.reset()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                link.upstream_host, link.upstream_port
            )
        except OSError:
            conn.reset()  # the far end is down: the client sees its connection reset
            return
        conn.upstream = up_writer
        if not link.enabled:  # went down while the upstream connection was being made
            conn.reset()
            return
        link.conns.add(conn)
        for toxic in link.toxics.values():
            if _closes(toxic):
                self._schedule_reset(link, conn, toxic)
        conn.tasks = [
            asyncio.ensure_future(self._pipe(link, conn, reader, up_writer, "upstream")),
            asyncio.ensure_future(self._pipe(link, conn, up_reader, writer, "downstream")),
        ]
        await asyncio.gather(*conn.tasks, return_exceptions=True)
        link.conns.discard(conn)
        for w in (writer, up_writer):
            if not w.is_closing():
                w.close()

    async def _pipe(
        self,
        link: Link,
        conn: _Conn,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stream: Stream,
    ) -> None:
        """Read as fast as the sender sends; deliver each chunk when its toxics allow."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.ensure_future(self._deliver(link, conn, queue, writer, stream))
        try:
            while True:
                try:
                    data = await reader.read(CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    break
                delay = (
                    sum(
                        max(0.0, t.attr("latency") + random.uniform(-1, 1) * t.attr("jitter"))
                        for t in link.active("latency", stream, conn)
                    )
                    / 1000
                )
                await queue.put((self._loop.time() + delay, data))
            if any(link.active("timeout", s, conn) for s in STREAMS):
                conn.reset()  # a peer gave up while the link held its data: as Toxiproxy does
                return
            await queue.put((0.0, b""))  # end of stream
            await deliver
        finally:
            deliver.cancel()

    async def _deliver(
        self,
        link: Link,
        conn: _Conn,
        queue: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        stream: Stream,
    ) -> None:
        last_due = 0.0
        while True:
            due, data = await queue.get()
            if not data:
                if writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return
            await self._hold(link, conn, stream)
            due = max(due, last_due)
            last_due = due
            wait = due - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            for toxic in link.active("bandwidth", stream, conn):
                rate = toxic.attr("rate")  # KB/s
                if rate > 0:
                    await asyncio.sleep(len(data) / (rate * 1000))
            await self._hold(link, conn, stream)
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                conn.reset()
                return

    async def _hold(self, link: Link, conn: _Conn, stream: Stream) -> None:
        """While a `timeout` toxic is on this stream, pass nothing (its close is scheduled)."""
        assert link.changed is not None
        while link.active("timeout", stream, conn):
            async with link.changed:
                await link.changed.wait()


def _closes(toxic: Toxic) -> bool:
    """Toxics that end connections after their `timeout` attribute."""
    return toxic.type == "reset_peer" or (toxic.type == "timeout" and toxic.attr("timeout") > 0)


__all__ = ["STREAMS", "Link", "Proxy", "ProxyError", "Toxic"]
