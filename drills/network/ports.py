"""Free ports for the servers and links drills starts.

A port found free is given back before its server binds it, and in that gap another bind to
port 0 (the kernel picks from the ephemeral range) or an outgoing connection could take it. So
ports are picked below the ephemeral range, where the kernel never picks on its own, and never
twice in one process.
"""

from __future__ import annotations

import errno
import random
import socket
import threading
from pathlib import Path
from typing import Any

LOWEST = 20000
_PICK_ATTEMPTS = 200
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_given: set[int] = set()
_lock = threading.Lock()


def ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1", family: int = socket.AF_INET) -> int:
    """A port nothing listens on at `host`, not given before by this process."""
    return pick_port(family, (host, 0))


def pick_port(family: int, sockaddr: tuple[Any, ...]) -> int:
    high = ephemeral_low()
    with _lock:
        if high - LOWEST >= 1000:
            for _ in range(_PICK_ATTEMPTS):
                port = random.randrange(LOWEST, high)
                if port not in _given and _bindable(family, (sockaddr[0], port, *sockaddr[2:])):
                    _given.add(port)
                    return port
        for _ in range(_PICK_ATTEMPTS):  # no room below the ephemeral range: the kernel picks
            port = _kernel_pick(family, sockaddr)
            if port not in _given:
                _given.add(port)
                return port
    raise OSError(errno.EADDRINUSE, "no free port found")


def _bindable(family: int, sockaddr: tuple[Any, ...]) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(sockaddr)
        except OSError:
            return False
    return True


def _kernel_pick(family: int, sockaddr: tuple[Any, ...]) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((sockaddr[0], 0, *sockaddr[2:]))
        return int(probe.getsockname()[1])
