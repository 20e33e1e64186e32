"""`drills proxy`: drills' fault proxy on its own, behind a Toxiproxy-compatible HTTP API."""

from __future__ import annotations

import argparse

from drills.cli.common import Subparsers, add_command
from drills.errors import EXIT_OK, DrillsError

Address = tuple[str, int]


def add_parsers(sub: Subparsers) -> None:
    proxy = add_command(
        sub,
        "proxy",
        _proxy,
        help="run drills' fault proxy with a Toxiproxy-compatible HTTP API until Ctrl-C",
        description=(
            "Serve the fault proxy on its own, driven through Toxiproxy's HTTP API (the subset "
            "drills implements). Scenarios reach it with `network: {toxiproxy: URL, links: ...}`."
        ),
    )
    proxy.add_argument("--api", default="127.0.0.1:8474", help="HOST:PORT of the HTTP API")
    proxy.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="NAME=LISTEN,UPSTREAM",
        help="create a link at start, e.g. db=127.0.0.1:6432,127.0.0.1:5432 (repeatable)",
    )


def _address(text: str) -> Address:
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit():
        raise DrillsError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def _links(specs: list[str]) -> list[tuple[str, Address, Address]]:
    links = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        listen, _, upstream = rest.partition(",")
        if not name or not listen or not upstream:
            raise DrillsError(f"--link {spec!r}: expected NAME=LISTEN,UPSTREAM")
        links.append((name, _address(listen), _address(upstream)))
    return links


def _proxy(args: argparse.Namespace) -> int:
    import signal
    import threading

    from drills.network.api import ApiServer
    from drills.network.proxy import Proxy

    links = _links(args.link)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Proxy(lambda link, change, _: print(f"{link}: {change}", flush=True)) as proxy:
        for name, listen, upstream in links:
            proxy.add_link(name, upstream, listen)
        try:
            server = ApiServer(proxy, _address(args.api))
        except OSError as exc:
            raise DrillsError(f"cannot serve the API on {args.api}: {exc.strerror}") from exc
        server.start()
        print(f"fault proxy API on {server.url} (Toxiproxy-compatible); Ctrl-C stops", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return EXIT_OK
