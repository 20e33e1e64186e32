"""The pgbench scale for a wanted database size."""

from __future__ import annotations

from drills.backup.fill import BYTES_PER_SCALE, scale_for


def test_the_scale_covers_the_wanted_size_over_what_the_database_already_holds() -> None:
    empty = 7_600_000
    assert scale_for(1024**3, empty) == 68  # 1 GB: 68 x 15.7 MB + 7.6 MB
    assert scale_for(792 * 1024**2, empty) == 52
    assert scale_for(empty + 10 * BYTES_PER_SCALE, empty) == 10


def test_the_scale_is_at_least_one() -> None:
    assert scale_for(1024, 7_600_000) == 1
