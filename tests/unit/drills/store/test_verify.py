"""Checking the store's rows one after another: the sequence, each link, the record against its
own digest and signature, the history against its row and record."""

from __future__ import annotations

import json
from typing import Any

from drills.records.chain import self_digest
from drills.records.signing import SigningKey
from drills.store.chain import link_digest, sha256
from drills.store.verify import Row, StoreCheck, check_row, history_problem

KEY = SigningKey(b"k" * 32, "test")


def record(n: int, key: SigningKey | None = KEY, history: str = "h") -> bytes:
    data: dict[str, Any] = {
        "run_id": f"run-{n}",
        "chain": {"history_sha256": sha256(history.encode())},
    }
    data["self_sha256"] = self_digest(data)
    if key is not None:
        data["signature"] = key.signature(data)
    return json.dumps(data).encode()


def chain(*records: bytes) -> list[Row]:
    rows, previous = [], None
    for seq, raw in enumerate(records, start=1):
        h, z = sha256(b"h"), sha256(b"z")
        link = link_digest(seq, previous, sha256(raw), h, z)
        rows.append(Row(seq, f"r{seq}.json", raw, sha256(raw), h, z, z, previous, link, "dc1"))
        previous = link
    return rows


def problems(rows: list[Row], key: SigningKey | None = KEY) -> list[str]:
    state = StoreCheck(key=key)
    for row in rows:
        check_row(state, row)
    return state.problems


def test_an_intact_chain_has_no_problem() -> None:
    rows = chain(record(1), record(2), record(3))
    assert problems(rows) == []
    state = StoreCheck(key=None)
    for row in rows:
        check_row(state, row)
    assert (state.head, state.unchecked, state.unsigned) == (3, 3, 0)


def test_a_removed_row_is_a_gap_and_a_broken_link() -> None:
    first, _, third = chain(record(1), record(2), record(3))
    found = problems([first, third])
    assert found == [
        "store #3 r3.json (from dc1): the sequence jumps from #1 to #3 (rows removed?)",
        "store #3 r3.json (from dc1): broken link: the row before it is not the one it "
        "follows (#1)",
    ]


def test_a_record_changed_in_place() -> None:
    rows = chain(record(1), record(2))
    rows[1] = Row(**{**rows[1].__dict__, "record": rows[1].record.replace(b"run-2", b"run-9")})
    found = problems(rows)
    assert "the record changed after it was stored (record_sha256)" in found[0]
    assert "content changed after it was written (self_sha256)" in found[1]


def test_a_row_rewritten_with_its_digests_is_caught_by_the_link_or_the_signature() -> None:
    rows = chain(record(1), record(2))
    forged = record(2, key=SigningKey(b"x" * 32, "other"))
    rows[1] = Row(**{**rows[1].__dict__, "record": forged, "record_sha256": sha256(forged)})
    found = problems(rows)
    assert any("its row changed after it was stored (link_sha256)" in p for p in found)
    assert any("signed with another key" in p for p in found)


def test_a_changed_history() -> None:
    rows = chain(record(1))
    rows[0] = Row(**{**rows[0].__dict__, "stored_zsha256": sha256(b"other")})
    assert problems(rows) == [
        "store #1 r1.json (from dc1): its history changed after it was stored"
    ]


def test_unsigned_records_with_a_key() -> None:
    found = problems(chain(record(1, key=None)))
    assert found == [
        "store #1 r1.json (from dc1): unsigned (written without the signing key, or its "
        "signature removed)"
    ]


def test_a_history_is_checked_against_its_row_when_decompressed() -> None:
    import zlib

    [row] = chain(record(1))
    assert history_problem(row, zlib.compress(b"h")) is None
    assert history_problem(row, zlib.compress(b"H")) == "its history changed"
    assert history_problem(row, b"junk") == "its history cannot be decompressed"
    assert history_problem(row, None) == "its history is missing"
