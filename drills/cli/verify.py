"""`drills verify`: the hash chain of the run records, their signatures, the anchored head."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from drills.cli.common import (
    KEY_CONFIG_HELP,
    STORE_HELP,
    Subparsers,
    add_command,
    add_config,
    add_reports_dir,
    add_store,
)
from drills.errors import EXIT_MISSED, EXIT_OK, DrillsError

if TYPE_CHECKING:
    from drills.records import ChainCheck


def add_parsers(sub: Subparsers) -> None:
    verify = add_command(
        sub,
        "verify",
        _verify,
        help="check the run records: hash chain, signatures, and the head anchored outside",
        description=(
            "Each record carries the sha256 of the record before it, of its own history and of "
            "itself, and, when drills has a signing key, an HMAC-SHA256 signature. Verify "
            "recomputes them all and names every problem, the first broken link first. With "
            "the key ($DRILLS_SIGNING_KEY_FILE, $DRILLS_SIGNING_KEY or signing_key_file in "
            "drills.yaml), an unsigned record or a wrong signature is a problem; without it, "
            "verify says how many records it could not authenticate. Exit status 0 when "
            "intact, 1 when something changed, 2 when the directory or key cannot be read."
        ),
    )
    add_reports_dir(verify)
    add_config(verify, KEY_CONFIG_HELP)
    add_store(
        verify,
        STORE_HELP + ": verify the store's chain instead (every row, link, record, signature "
        "and history); --expect-head is then the store's sequence number",
    )
    verify.add_argument(
        "--expect-head",
        metavar="N[:SHA256]",
        help=(
            "the newest record an outside system anchored (drills_chain_head_sequence, or the "
            "`head:` line verify prints): its sequence number N, perhaps with the first hex "
            "digits of its self_sha256. Catches the newest records removed with .chain-head"
        ),
    )


def _signatures(found: ChainCheck) -> str:
    if found.key is not None:
        return f"every record signed with key {found.key.key_id}"
    parts = []
    if found.unsigned:
        parts.append(f"{len(found.unsigned)} unsigned")
    if found.unchecked:
        parts.append(f"{len(found.unchecked)} signed but not checked")
    if not parts:
        return "no signing key"
    return f"{', '.join(parts)}: not authenticated (no signing key given)"


def _verify(args: argparse.Namespace) -> int:
    from drills.config import config_path
    from drills.records import Anchor, check_chain, signing_key
    from drills.store.readers import store_in_effect

    store = store_in_effect(args)
    if store is not None:
        from drills.cli.verify_store import verify_store

        return verify_store(args, store)
    if not args.reports_dir.is_dir():
        raise DrillsError(f"{args.reports_dir}: no such directory")
    anchor = None if args.expect_head is None else Anchor.parse(args.expect_head)
    key = signing_key(args.reports_dir, config_path(args.config))
    found = check_chain(args.reports_dir, key, anchor)
    for problem in found.problems:
        print(problem, file=sys.stderr)
    checked = len(found.records)
    if found.head is not None:
        print(f"head: #{found.head.seq} {found.head.name} (anchor {found.head.anchor})")
    if found.problems:
        first = found.problems[0]
        print(f"{checked} records checked: {len(found.problems)} problems; first: {first}")
        return EXIT_MISSED
    print(f"{checked} records checked: chain intact; {_signatures(found)}")
    return EXIT_OK
