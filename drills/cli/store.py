"""`drills store`: the results store shared by many runners (docs/store.md): create or
migrate its tables, import and export record files, upload what was spooled, and say what
it holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from drills.cli.common import Handler, Subparsers, add_command, add_config, add_store
from drills.errors import EXIT_ERROR, EXIT_OK, DrillsError

if TYPE_CHECKING:
    from drills.store.runs import Conn
    from drills.store.settings import Store


def add_parsers(sub: Subparsers) -> None:
    store = add_command(
        sub,
        "store",
        _usage,
        help="the results store: migrate, import, export, flush, status",
        description=(
            "A PostgreSQL database that keeps the run records and histories of many runners, "
            "chained by a sequence it assigns, with leases on targets across hosts "
            "(docs/store.md). Every subcommand creates or migrates its tables first."
        ),
    )
    actions = store.add_subparsers(dest="action", metavar="ACTION")
    for name, handler, help in (
        ("migrate", _migrate, "create or migrate the store's tables"),
        ("status", _status, "records, chain head, spooled records and leases held"),
        ("flush", _flush, "upload the records spooled while the store could not be reached"),
    ):
        parser = add_command(actions, name, _answering(handler), help=help, description=help)
        _common(parser)
    for name, handler, help in (
        ("import", _import, "add a reports directory's records (those already there: skipped)"),
        ("export", _export, "write every stored record and history to DIR/<runner>/"),
    ):
        parser = add_command(actions, name, _answering(handler), help=help, description=help)
        parser.add_argument("directory", type=Path, metavar="DIR")
        _common(parser)


def _answering(handler: Handler) -> Handler:
    """`handler` with a database error as one line naming the store, exit status 2."""

    def run(args: argparse.Namespace) -> int:
        import psycopg

        try:
            return handler(args)
        except psycopg.Error as exc:
            from drills.store.readers import store_in_effect
            from drills.store.settings import Store, unreachable

            raise unreachable(store_in_effect(args) or Store(""), exc) from None

    return run


def _common(parser: argparse.ArgumentParser) -> None:
    add_store(parser)
    add_config(parser)


def _usage(args: argparse.Namespace) -> int:
    print("drills store: give an action: migrate, status, flush, import DIR, export DIR")
    return EXIT_ERROR


def _store(args: argparse.Namespace, migrated: bool = True) -> tuple[Store, Conn]:
    from drills.store.readers import store_in_effect
    from drills.store.schema import open_store

    store = store_in_effect(args)
    if store is None:
        raise DrillsError(
            "no store: give --store URL, set $DRILLS_STORE, or store.url in drills.yaml"
        )
    return store, open_store(store) if migrated else store.connect()


def _migrate(args: argparse.Namespace) -> int:
    from drills.store.schema import VERSION, migrate

    store, conn = _store(args, migrated=False)
    with conn:
        before = migrate(conn)
    state = "is at" if before == VERSION else f"migrated from version {before} to"
    print(f"{store.display}: schema {state} version {VERSION}")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from drills.store.spool import spooled

    store, conn = _store(args)
    with conn:
        count, head, runners = conn.execute(
            "SELECT count(*), coalesce(max(seq), 0), count(DISTINCT runner) FROM drills_runs"
        ).fetchone() or (0, 0, 0)
        leases = conn.execute(
            "SELECT key, host, pid, scenario, expires_at < now() FROM drills_leases ORDER BY key"
        ).fetchall()
    print(f"{store.display}: {count} records from {runners} runners, chain head #{head}")
    for key, host, pid, scenario, expired in leases:
        state = "expired" if expired else "held"
        print(f"lease {state}: {key} by {scenario!r}, pid {pid} on {host}")
    print(f"spooled here: {len(spooled())}")
    return EXIT_OK


def _flush(args: argparse.Namespace) -> int:
    from drills.store.spool import flush

    store, conn = _store(args)
    with conn:
        done = flush(conn)
    for line in done.failed:
        print(f"drills: {line}", file=sys.stderr)
    print(f"{len(done.stored)} spooled records uploaded to {store.display}, {done.left} left")
    return EXIT_ERROR if done.left else EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from drills.store.files import import_dir

    store, conn = _store(args)
    with conn:
        moved = import_dir(conn, args.directory)
    for line in moved.problems:
        print(f"drills: {line}", file=sys.stderr)
    print(
        f"{args.directory}: {moved.added} records added to {store.display}, "
        f"{moved.present} already there"
    )
    return EXIT_ERROR if moved.problems else EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from drills.store.files import export_dir

    store, conn = _store(args)
    with conn:
        moved = export_dir(conn, args.directory)
    for line in moved.problems:
        print(f"drills: {line}", file=sys.stderr)
    print(
        f"{args.directory}: {moved.added} records written from {store.display}, "
        f"{moved.present} already there"
    )
    return EXIT_ERROR if moved.problems else EXIT_OK
