"""What the commands that read records (report, `due`, `show`, the exporter) use when a store
is configured: its runs, checked, in place of a reports directory's."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drills.records.runs import Run
from drills.records.signing import SigningKey
from drills.store.runs import stored_runs
from drills.store.schema import open_store
from drills.store.settings import Store, answering, find_store


def store_in_effect(args: argparse.Namespace) -> Store | None:
    """The store of `--store`, `$DRILLS_STORE` or drills.yaml (`--config`), if any."""
    from drills.config import config_path

    if getattr(args, "no_store", False):
        return None
    return find_store(getattr(args, "store", None), config_path(getattr(args, "config", None)))


@contextmanager
def runs_from_store(
    store: Store, key: SigningKey | None, left_out: list[str]
) -> Iterator[list[Run]]:
    """The store's runs that pass verification, their histories readable while it is open."""
    with answering(store), open_store(store) as conn:
        yield stored_runs(conn, key, left_out)


def named_run(runs: list[Run], name: str, where: str) -> Run:
    """`last`, a run id, or a record file's name, among `runs` (oldest first)."""
    from drills.errors import DrillsError

    if not runs:
        raise DrillsError(f"no run record in {where}")
    if name == "last":
        return runs[-1]
    wanted = Path(name).name.removesuffix(".json")
    found = [run for run in runs if run.record.run_id == wanted or run.path.stem == wanted]
    if not found:
        raise DrillsError(f"no run {name!r} in {where} (the newest: {runs[-1].record.run_id})")
    return found[-1]
