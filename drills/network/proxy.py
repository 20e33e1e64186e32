"""A TCP fault proxy on asyncio, one listener per link, controlled from other threads.

The proxy runs its own event loop in a daemon thread. Every change to a link takes effect
inside that loop, and is reported to `on_change` with the monotonic time at which it took
effect, so a history can shade fault intervals exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from drills.errors import DrillsError
from drills.network.addresses import AddressPolicy
from drills.network.heldport import HeldPort
from drills.network.links import Link, closes, schedule_reset, serve
from drills.network.toxics import STREAMS, Toxic

T = TypeVar("T")
ChangeHook = Callable[[str, str, int], None]  # link, change, monotonic ns


class ProxyError(DrillsError):
    """The proxy could not do what it was asked."""


class Proxy:
    """Links listen and forward where `policy` allows (default: loopback only)."""

    def __init__(
        self, on_change: ChangeHook | None = None, policy: AddressPolicy | None = None
    ) -> None:
        self.on_change = on_change
        self.policy = policy or AddressPolicy()
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
        self.policy.check_listen(listen[0])
        await self.policy.vet(*upstream)
        link = Link(name, listen[0], listen[1], upstream[0], upstream[1], policy=self.policy)
        link.changed = asyncio.Condition()
        try:
            await self._listen(link)
        except ProxyError:
            await self._close(link)
            raise
        self.links[name] = link
        self._record(name, f"created {link.listen} -> {link.upstream}")
        return link.listen_port

    async def _listen(self, link: Link) -> None:
        try:
            if link.held is None:
                link.held = await self._bind(link.listen_host, link.listen_port)
            copy = link.held.listening()
            try:
                link.server = await asyncio.start_server(lambda r, w: serve(link, r, w), sock=copy)
            except BaseException:
                copy.close()
                raise
        except OSError as exc:
            raise ProxyError(f"link {link.name}: cannot listen on {link.listen}: {exc}") from exc
        link.listen_port = link.held.port

    async def _bind(self, host: str, port: int) -> HeldPort:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, sockaddr = infos[0]
        return HeldPort.bind(family, sockaddr)

    async def _remove_link(self, name: str) -> None:
        link = self._link(name)
        await self._close(link)
        del self.links[name]
        self._record(name, "removed")

    async def _close(self, link: Link, keep_port: bool = False) -> None:
        """Stop serving the link; `keep_port`: hold its port (link down) rather than free it."""
        # Reset first: from Python 3.12.1 wait_closed() waits for every accepted connection.
        server, link.server = link.server, None
        for conn in list(link.conns):
            conn.reset()
        link.conns.clear()
        if server is not None:
            server.close()
            await server.wait_closed()
        if link.held is not None and keep_port:
            link.held.hold()
        elif link.held is not None:
            link.held.close()
            link.held = None

    async def _set_enabled(self, name: str, enabled: bool) -> None:
        link = self._link(name)
        if enabled == link.enabled:
            return
        if enabled:
            try:
                await self._listen(link)
            except ProxyError:
                await self._close(link, keep_port=True)  # still down, its port still held
                raise
            link.enabled = True
            self._record(name, "up")
        else:
            link.enabled = False
            await self._close(link, keep_port=True)
            self._record(name, "down")

    async def _add_toxic(self, name: str, toxic: Toxic) -> None:
        link = self._link(name)
        if toxic.name in link.toxics:
            raise ProxyError(f"link {name}: toxic {toxic.name!r} exists already")
        link.toxics[toxic.name] = toxic
        self._record(name, f"+{toxic.type} {toxic.stream} {toxic.name} {toxic.attributes}")
        if closes(toxic):
            for conn in list(link.conns):
                schedule_reset(link, conn, toxic)
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


__all__ = ["STREAMS", "Link", "Proxy", "ProxyError", "Toxic"]
