"""The restore step's keys, its choice of backup and its recovery options, without servers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drills.backup.pgbackrest import BackupSet, Repository
from drills.backup.restore import Restore
from drills.errors import StepError
from drills.history import StepEvent
from drills.steps.base import RevertStack, StepContext


def restore(**keys: Any) -> Restore:
    return Restore.model_validate({"kind": "restore", "target": "site-a", **keys})


def backup_set(label: str, age_s: int) -> BackupSet:
    """A backup that stopped `age_s` before now (now: when the test runs, not when collected)."""
    stop = int(time.time()) - age_s
    return BackupSet(label, "full", stop - 5, stop, 10_000_000, 1_000_000, "0/3000000")


def context(**done: StepEvent) -> StepContext:
    ctx = StepContext({}, {}, RevertStack(), {}, 3, lambda message: None)
    ctx.done.update(done)
    return ctx


def incident(seconds_ago: float, **facts: Any) -> StepEvent:
    at_ns = time.monotonic_ns() - int(seconds_ago * 1e9)
    return StepEvent(
        1,
        "sql",
        "sql",
        at_ns - 1000,
        at_ns,
        True,
        facts={"incident": facts | {"at_ns": at_ns}},
        name="drop",
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"before": "drop", "time": "2026-12-02T16:00:00Z"}, "give `before` or `time`"),
        ({"standby_of": "site-a"}, "a standby of itself"),
        ({"standby_of": "site-b", "before": "drop"}, "a standby follows its primary"),
        ({"standby_of": "site-b", "to": "immediate"}, "a standby follows its primary"),
        ({"check": "SELECT 1"}, "`check` compares with the value the `before:` step read"),
        ({"time": "2026-12-02T16:00:00"}, "has no time zone"),
    ],
)
def test_keys_that_cannot_work_together_are_refused(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        restore(**keys)


def test_backup_names_a_step_unless_it_is_a_pgbackrest_label() -> None:
    assert restore(backup="nightly").step_refs == ["nightly"]
    assert restore(backup="20261202-160427F").step_refs == []
    assert restore(before="drop", backup="nightly").step_refs == ["drop", "nightly"]


def test_an_xid_target_takes_the_newest_backup_that_ended_before_it(tmp_path: Path) -> None:
    sets = [backup_set("old", 600), backup_set("newer", 60), backup_set("after", 5)]
    step = restore(before="drop")
    facts: dict[str, Any] = {}
    ctx = context(drop=incident(30, xid=1234))
    target, options, wall = step._target(ctx, facts)
    chosen = step._chosen_set(ctx, Repository(tmp_path, None), sets, wall)
    assert chosen.label == "newer"  # "after" ended after the drop: it holds the drop
    assert target == {"type": "xid", "value": "1234", "exclusive": True}
    assert options == ["--type=xid", "--target=1234", "--target-exclusive"]
    assert facts["before_step"] == "drop" and facts["incident_ns"] > facts["incident_start_ns"] - 1


def test_a_target_older_than_every_backup_is_a_step_error(tmp_path: Path) -> None:
    step = restore(time="2020-01-01T00:00:00Z")
    _, _, wall = step._target(context(), {})
    with pytest.raises(StepError, match=r"older than every backup: old ended"):
        step._chosen_set(context(), Repository(tmp_path, None), [backup_set("old", 600)], wall)
    named = restore(before="drop", backup="20261202-160427F")
    ctx = context(drop=incident(700))
    _, _, wall = named._target(ctx, {})
    sets = [backup_set("20261202-160427F", 600)]
    with pytest.raises(StepError, match="older than the backup named"):
        named._chosen_set(ctx, Repository(tmp_path, None), sets, wall)


def test_latest_and_immediate_need_no_target_time(tmp_path: Path) -> None:
    assert restore()._target(context(), {})[1:] == ([], None)
    assert restore(to="immediate")._target(context(), {})[1:] == (["--type=immediate"], None)
    sets = [backup_set("a", 600), backup_set("b", 60)]
    assert restore()._chosen_set(context(), Repository(tmp_path, None), sets, None).label == "b"
