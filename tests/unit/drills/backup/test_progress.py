"""A pgBackRest command's progress from its console output, against real captured runs
(tests/data/pgbackrest/README.md says how they were made)."""

from __future__ import annotations

import gzip

import pytest

from drills.backup.progress import Command, TransferProgress, command_seconds, pgbackrest_bytes
from tests.paths import DATA

CAPTURES = DATA / "pgbackrest"
MB = 1024 * 1024


def lines(name: str) -> list[str]:
    path = CAPTURES / name
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode().splitlines()
    return path.read_text().splitlines()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fed(name: str, clock: Clock | None = None) -> TransferProgress:
    command: Command = "backup" if name.startswith("backup") else "restore"
    progress = TransferProgress(command, clock or Clock())
    for line in lines(name):
        progress.feed(line)
    return progress


@pytest.mark.parametrize(
    ("name", "total", "files", "seconds"),
    [
        ("backup-full.log.gz", 97.0 * MB, 977, 18.552),
        ("backup-incr.log.gz", 78.6 * MB, 977, 3.822),
        ("restore.log.gz", 100.0 * MB, 977, 0.805),
        ("restore-delta.log.gz", 100.0 * MB, 977, 0.571),
    ],
)
def test_a_whole_run_ends_at_pgbackrests_own_totals_and_time(
    name: str, total: float, files: int, seconds: float
) -> None:
    progress = fed(name)
    assert progress.total_bytes == round(total)
    assert progress.done_bytes == round(total)
    assert progress.percent == 100.0
    assert progress.files == files
    assert progress.pgbackrest_s == seconds
    assert progress.error is None


def test_the_backup_label_is_read_and_the_expire_after_a_backup_is_not_its_time() -> None:
    full = fed("backup-full.log.gz")
    assert full.label == "20261202-160111F"
    assert fed("backup-incr.log.gz").label == "20261202-160111F_20261202-160138I"
    expire_end = [line for line in lines("backup-full.log.gz") if "expire command end" in line]
    assert command_seconds(expire_end[0], "backup") is None
    assert command_seconds(expire_end[0], "expire") == 0.002


def test_the_total_is_estimated_from_the_first_file_until_pgbackrest_prints_it() -> None:
    progress = TransferProgress("backup", Clock())
    first_file = next(line for line in lines("backup-full.log.gz") if "backup file" in line)
    assert "(64MB, 66.02%)" in first_file
    progress.feed(first_file)
    assert progress.percent == 66.02
    assert progress.done_bytes == 64 * MB
    assert progress.total_bytes == round(64 * MB / 0.6602)


def test_each_file_line_form_counts() -> None:
    progress = TransferProgress("restore", Clock())
    samples = [
        "2026-12-02 16:01:49.014 P01 DETAIL: restore file /tmp/pgbr/restored/base/5/16549 "
        "(66.6MB, 66.61%) checksum 3d3e278d0a573cf4e36befa678e903024ca58f27",
        "2026-12-02 16:01:53.228 P01 DETAIL: restore file /tmp/pgbr/data/base/5/1255 - exists "
        "and matches backup (768KB, 78.52%) checksum e377ebf35849da56f75bb7c875c61ef8088f680a",
        "2026-12-02 16:01:53.297 P01 DETAIL: restore file /tmp/pgbr/data/base/5/4153 - exists "
        "and is zero size (0B, 100.00%)",
    ]
    for line in samples:
        progress.feed(line)
    assert progress.files == 3
    assert progress.file_bytes == round(66.6 * MB) + 768 * 1024
    assert progress.percent == 100.0


def test_other_lines_change_nothing() -> None:
    progress = TransferProgress("backup", Clock())
    for line in lines("backup-incr.log.gz"):
        if "reference pg_data" in line or "backup start archive" in line:
            progress.feed(line)
    assert (progress.files, progress.percent, progress.done_bytes) == (0, None, 0)


def test_a_failed_restore_gives_its_error_and_no_time() -> None:
    progress = fed("restore-error.log")
    assert progress.error == (
        "[040]: unable to restore to path '/tmp/pgbr/restored' because it contains files"
    )
    assert progress.pgbackrest_s is None
    assert progress.percent is None


def test_the_message_gives_bytes_share_and_rate() -> None:
    clock = Clock()
    progress = TransferProgress("restore", clock)
    clock.now += 2.0
    progress.feed("P01 DETAIL: restore file /x (312MB, 39.39%) checksum 0a")
    assert progress.message() == "restore: 312 MB of 792 MB (39%), 156 MB/s"


def test_before_any_file_the_message_has_no_total() -> None:
    progress = TransferProgress("backup", Clock())
    assert progress.message() == "backup: 0 B, 0 B/s"


def test_a_message_is_due_at_most_once_a_second_and_only_after_progress() -> None:
    clock = Clock()
    progress = TransferProgress("restore", clock)
    clock.now += 5
    assert not progress.due()  # nothing copied yet
    progress.feed("P01 DETAIL: restore file /x (10MB, 10.00%) checksum 0a")
    assert progress.due()
    progress.feed("P01 DETAIL: restore file /y (10MB, 20.00%) checksum 0b")
    clock.now += 0.5
    assert not progress.due()
    clock.now += 0.5
    assert progress.due()
    clock.now += 3
    assert not progress.due()  # no news since the last message


def test_pgbackrest_sizes_are_1024_multiples() -> None:
    assert pgbackrest_bytes("768", "KB") == 768 * 1024
    assert pgbackrest_bytes("10.7", "MB") == round(10.7 * MB)
    assert pgbackrest_bytes("0", "B") == 0
