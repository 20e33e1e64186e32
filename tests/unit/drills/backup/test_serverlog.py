from pathlib import Path

from drills.backup.serverlog import log_size, read_redo

LOG = """\
2026-12-02 16:00:00.100 UTC [10] LOG:  database system is ready to accept connections
2026-12-02 16:00:05.000 UTC [20] LOG:  starting point-in-time recovery to XID 1234
2026-12-02 16:00:05.250 UTC [20] LOG:  redo starts at 0/2000028
2026-12-02 16:00:05.900 UTC [20] LOG:  recovery stopping before commit of transaction 1234
2026-12-02 16:00:05.901 UTC [20] LOG:  redo done at 0/3000A08 system usage: CPU: user: 0.00 s
2026-12-02 16:00:06.010 UTC [18] LOG:  database system is ready to accept connections
"""


def test_redo_times_after_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text(LOG)
    offset = len(LOG.splitlines(keepends=True)[0])
    redo = read_redo(path, offset)
    base = 1796227200_000_000_000  # 2026-12-02 16:00:00 UTC
    assert redo.started_wall_ns == base + 5_250_000_000
    assert redo.done_wall_ns == base + 5_901_000_000
    assert redo.ready_wall_ns == base + 6_010_000_000
    assert redo.target_reached.startswith("recovery stopping before commit of transaction 1234")


def test_a_log_without_redo_gives_none(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text(LOG.splitlines(keepends=True)[0])
    redo = read_redo(path, 0)
    assert (redo.started_wall_ns, redo.done_wall_ns) == (None, None)
    assert read_redo(tmp_path / "missing.log", 0).started_wall_ns is None
    assert log_size(tmp_path / "missing.log") == 0
