"""A listening socket that keeps its port while its link is down.

Down, the socket stops listening (Linux: `shutdown(SHUT_RD)` on a listening socket) but stays
bound with SO_REUSEADDR off: the kernel answers new connections with a reset, as from a closed
port (clients see "connection refused"), and no other socket can bind the address, whatever
options it sets, so nobody else receives the clients' reconnects. Up, the same socket listens
again. The port is bound by number (port 0 picks a free one first): a socket bound to port 0
would give its port back when it stops listening.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import Any

from drills.network.ports import pick_port

BACKLOG = 128
_PICK_ATTEMPTS = 20


class HeldPort:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def bind(cls, family: int, sockaddr: tuple[Any, ...]) -> HeldPort:
        """Bind `sockaddr` (port 0: a free port, by number); OSError if it is taken."""
        if sockaddr[1] != 0:
            return cls(_bound(family, sockaddr))
        for _ in range(_PICK_ATTEMPTS):
            try:
                return cls(
                    _bound(family, (sockaddr[0], pick_port(family, sockaddr), *sockaddr[2:]))
                )
            except OSError as exc:  # taken between the pick and the bind: pick again
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, "no free port found")

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def listening(self) -> socket.socket:
        """Listen (again); return a duplicate for the server, which closes it when it stops."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.listen(BACKLOG)
        return self.sock.dup()

    def hold(self) -> None:
        """Stop listening, keep the port: new connections refused, the address not bindable."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)

    def close(self) -> None:
        self.sock.close()


def _bound(family: int, sockaddr: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock
