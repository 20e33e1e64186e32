"""`drills proxy`: drills' fault proxy on its own, behind a Toxiproxy-compatible HTTP API."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from drills.cli.common import Subparsers, add_command
from drills.errors import EXIT_OK, DrillsError

if TYPE_CHECKING:
    from drills.network.addresses import AddressPolicy

Address = tuple[str, int]


def add_parsers(sub: Subparsers) -> None:
    proxy = add_command(
        sub,
        "proxy",
        _proxy,
        help="run drills' fault proxy with a Toxiproxy-compatible HTTP API until Ctrl-C",
        description=(
            "Serve the fault proxy on its own, driven through Toxiproxy's HTTP API (the subset "
            "drills implements). Scenarios reach it with `network: {toxiproxy: URL, links: ...}`. "
            "Every request needs `Authorization: Bearer TOKEN`: the token comes from "
            "--token-file, else $DRILLS_PROXY_TOKEN, else is generated and printed."
        ),
    )
    proxy.allow_abbrev = False  # `--token` must not pass for `--token-file`
    proxy.add_argument("--api", default="127.0.0.1:8474", help="HOST:PORT of the HTTP API")
    proxy.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="NAME=LISTEN,UPSTREAM",
        help="create a link at start, e.g. db=127.0.0.1:6432,127.0.0.1:5432 (repeatable); "
        "its upstream is allowed for links created later too",
    )
    proxy.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="read the API token from PATH (mode 600); never give a token on the command line",
    )
    proxy.add_argument(
        "--allow-upstream",
        action="append",
        default=[],
        metavar="CIDR|HOST:PORT",
        help="also forward there (default: loopback and the --link upstreams only; link-local "
        "and cloud metadata addresses are refused whatever this says) (repeatable)",
    )
    proxy.add_argument(
        "--allow-wildcard-listen",
        action="store_true",
        help="allow the API and links to listen on every address (0.0.0.0, ::)",
    )


def _address(text: str) -> Address:
    from drills.network.addresses import split_endpoint

    try:
        return split_endpoint(text)
    except ValueError as exc:
        raise DrillsError(f"{text!r} is not HOST:PORT") from exc


def _links(specs: list[str]) -> list[tuple[str, Address, Address]]:
    links = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        listen, _, upstream = rest.partition(",")
        if not name or not listen or not upstream:
            raise DrillsError(f"--link {spec!r}: expected NAME=LISTEN,UPSTREAM")
        links.append((name, _address(listen), _address(upstream)))
    return links


def _policy(args: argparse.Namespace, links: list[tuple[str, Address, Address]]) -> AddressPolicy:
    from drills.network.addresses import AddressPolicy

    try:
        policy = AddressPolicy.from_entries(args.allow_upstream, args.allow_wildcard_listen)
    except ValueError as exc:
        raise DrillsError(f"--allow-upstream: {exc} (give CIDR, an address or HOST:PORT)") from exc
    return policy.declaring(upstream for _, _, upstream in links)


def _print_change(link: str, change: str, _: int) -> None:
    print(f"{link}: {change}", flush=True)


def _proxy(args: argparse.Namespace) -> int:
    import signal
    import threading

    from drills.network.api import ApiServer
    from drills.network.proxy import Proxy
    from drills.network.tokens import TOKEN_ENV, server_token

    links = _links(args.link)
    policy = _policy(args, links)
    token, generated = server_token(args.token_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Proxy(_print_change, policy) as proxy:
        for name, listen, upstream in links:
            proxy.add_link(name, upstream, listen)
        try:
            server = ApiServer(proxy, _address(args.api), token=token)
        except OSError as exc:
            raise DrillsError(f"cannot serve the API on {args.api}: {exc.strerror}") from exc
        server.start()
        print(f"fault proxy API on {server.url} (Toxiproxy-compatible); Ctrl-C stops", flush=True)
        if generated:
            print(
                f"API token (send Authorization: Bearer; drills reads {TOKEN_ENV}): {token}",
                flush=True,
            )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return EXIT_OK
