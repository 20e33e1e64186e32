"""`drills verify --store`: the store's chain, every row with its history."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from drills.errors import EXIT_MISSED, EXIT_OK
from drills.store.chain import as_bytes
from drills.store.runs import Conn
from drills.store.settings import Store, answering
from drills.store.verify import COLUMNS, Row, StoreCheck, check_all


def _rows(conn: Conn) -> Iterator[tuple[Row, bytes | None]]:
    with conn.transaction(), conn.cursor(name="drills_verify") as cursor:
        cursor.itersize = 200
        cursor.execute(f"SELECT {COLUMNS}, history FROM drills_runs ORDER BY seq".encode())
        for values in cursor:
            history = values[-1]
            yield Row.of(tuple(values[:-1])), None if history is None else as_bytes(history)


def _signatures(found: StoreCheck) -> str:
    if found.key is not None:
        return f"every record signed with key {found.key.key_id}"
    parts = [f"{n} {what}" for n, what in ((found.unsigned, "unsigned"),) if n]
    if found.unchecked:
        parts.append(f"{found.unchecked} signed but not checked")
    return f"{', '.join(parts)}: not authenticated (no signing key given)" if parts else ""


def _anchored(found: StoreCheck, store: Store, conn: Conn, text: str | None) -> list[str]:
    """The head an outside system anchored (N, or N:HEX of its link_sha256) is still there."""
    from drills.records import Anchor

    if text is None:
        return []
    anchor = Anchor.parse(text)
    if found.head < anchor.seq:
        return [
            f"{store.display}: the chain ends at #{found.head}, but #{anchor.seq} was anchored "
            "as its head: the newest records were removed"
        ]
    row = conn.execute(
        "SELECT link_sha256 FROM drills_runs WHERE seq = %s", (anchor.seq,)
    ).fetchone()
    if row is None:
        return [f"{store.display}: no row #{anchor.seq}, which was anchored"]
    if anchor.sha256 is not None and not str(row[0]).startswith(anchor.sha256):
        return [f"store #{anchor.seq}: it is not the row anchored ({anchor.sha256})"]
    return []


def verify_store(args: argparse.Namespace, store: Store) -> int:
    from drills.config import config_path
    from drills.records import signing_key
    from drills.store.schema import open_store

    key = signing_key(args.reports_dir, config_path(args.config))
    with answering(store), open_store(store) as conn:
        found = check_all(_rows(conn), key)
        problems = found.problems + _anchored(found, store, conn, args.expect_head)
    for problem in problems:
        print(problem, file=sys.stderr)
    if found.head:
        anchor = f"{found.head}:{(found.last_link or '')[:16]}"
        print(f"head: #{found.head} in {store.display} (anchor {anchor})")
    if problems:
        print(f"{found.checked} records checked: {len(problems)} problems; first: {problems[0]}")
        return EXIT_MISSED
    signed = _signatures(found)
    print(f"{found.checked} records checked: chain intact{'; ' + signed if signed else ''}")
    return EXIT_OK
