"""One link of the fault proxy: its state, its connections, and the data path through toxics.

Everything here runs inside the proxy's event loop (`drills.network.proxy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from drills.network.addresses import IP, AddressPolicy, AddressRefused
from drills.network.heldport import HeldPort
from drills.network.toxics import STREAMS, Stream, Toxic

CHUNK = 65536


def reset_abruptly(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN, as a crashed peer or a dropped route would look."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class Conn:
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
                reset_abruptly(writer)
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
    conns: set[Conn] = field(default_factory=set)
    server: asyncio.Server | None = None
    changed: asyncio.Condition | None = None
    held: HeldPort | None = None  # the listening socket, kept while the link is down
    policy: AddressPolicy = field(default_factory=AddressPolicy)

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"

    @property
    def upstream(self) -> str:
        return f"{self.upstream_host}:{self.upstream_port}"

    def active(self, kind: str, stream: Stream, conn: Conn) -> list[Toxic]:
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


def closes(toxic: Toxic) -> bool:
    """Toxics that end connections after their `timeout` attribute."""
    return toxic.type == "reset_peer" or (toxic.type == "timeout" and toxic.attr("timeout") > 0)


def schedule_reset(link: Link, conn: Conn, toxic: Toxic) -> None:
    if not conn.applies(toxic):
        return
    delay = toxic.attr("timeout") / 1000

    def fire() -> None:
        if toxic.name in link.toxics:
            conn.reset()
            link.conns.discard(conn)

    asyncio.get_running_loop().call_later(delay, fire)


async def serve(link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One client connection: connect upstream, then pipe both ways through the toxics."""
    conn = Conn(client=writer, started=asyncio.get_running_loop().time())
    if not link.enabled:
        conn.reset()
        return
    opened = await _connect_upstream(link)
    if opened is None:
        conn.reset()  # the far end is down or refused: the client sees its connection reset
        return
    up_reader, up_writer = opened
    conn.upstream = up_writer
    if not link.enabled:  # went down while the upstream connection was being made
        conn.reset()
        return
    link.conns.add(conn)
    for toxic in link.toxics.values():
        if closes(toxic):
            schedule_reset(link, conn, toxic)
    conn.tasks = [
        asyncio.ensure_future(_pipe(link, conn, reader, up_writer, "upstream")),
        asyncio.ensure_future(_pipe(link, conn, up_reader, writer, "downstream")),
    ]
    await asyncio.gather(*conn.tasks, return_exceptions=True)
    link.conns.discard(conn)
    for w in (writer, up_writer):
        if not w.is_closing():
            w.close()


async def _connect_upstream(
    link: Link,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Resolve the upstream again and check every address (DNS may have changed), then connect."""
    try:
        ips: list[IP] = await link.policy.vet(link.upstream_host, link.upstream_port)
    except AddressRefused:
        return None
    for ip in ips:
        try:
            return await asyncio.open_connection(str(ip), link.upstream_port)
        except OSError:
            continue
    return None


async def _pipe(
    link: Link,
    conn: Conn,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    stream: Stream,
) -> None:
    """Read as fast as the sender sends; deliver each chunk when its toxics allow."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    deliver = asyncio.ensure_future(_deliver(link, conn, queue, writer, stream))
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
            await queue.put((asyncio.get_running_loop().time() + delay, data))
        if any(link.active("timeout", s, conn) for s in STREAMS):
            conn.reset()  # a peer gave up while the link held its data: as Toxiproxy does
            return
        await queue.put((0.0, b""))  # end of stream
        await deliver
    finally:
        deliver.cancel()


async def _deliver(
    link: Link,
    conn: Conn,
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
        await _hold(link, conn, stream)
        due = max(due, last_due)
        last_due = due
        wait = due - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        for toxic in link.active("bandwidth", stream, conn):
            rate = toxic.attr("rate")  # KB/s
            if rate > 0:
                await asyncio.sleep(len(data) / (rate * 1000))
        await _hold(link, conn, stream)
        try:
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError):
            conn.reset()
            return


async def _hold(link: Link, conn: Conn, stream: Stream) -> None:
    """While a `timeout` toxic is on this stream, pass nothing (its close is scheduled)."""
    assert link.changed is not None
    while link.active("timeout", stream, conn):
        async with link.changed:
            await link.changed.wait()
