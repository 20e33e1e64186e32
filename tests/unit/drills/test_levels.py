"""Incident levels judged on hand-built histories: response and recovery against the level."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.errors import ScenarioError
from drills.history import Clock, History, StepEvent
from drills.levels import (
    AUTO_RESPONSE,
    DEFAULT_LEVELS,
    Level,
    judge_level,
    resolve_level,
    response_s,
)
from drills.scenario import load_scenario
from drills.verdicts import Verdict

S = 1_000_000_000


def history(*manual: dict[str, object], manual_at_s: float = 11) -> History:
    steps = [StepEvent(1, "kill", "kill site-a", 10 * S, 10 * S + 1000, True)]
    for i, facts in enumerate(manual):
        start = round((manual_at_s + i) * S)
        steps.append(
            StepEvent(2 + i, "manual", "manual", start, start, False, facts={"manual": facts})
        )
    return History(clock=Clock(0, 0), steps=steps)


ACKED = {"acknowledged": True, "operator_time_s": 2.0, "response": True, "role": "dba"}


def test_the_response_is_the_first_acknowledged_response_step_after_the_disruption() -> None:
    plain = {"acknowledged": True, "operator_time_s": 0.5, "role": "support"}
    found = history(plain, ACKED)
    assert response_s(found, 10 * S) == (4.0, "")  # manual at 12 s + 2 s, fault at 10 s


def test_met_missed_and_unknown_against_the_level() -> None:
    quick = Level(1, respond_s=5, recover_s=60)
    met = {r.name: r for r in judge_level(quick, history(ACKED), 10 * S, 30.0, "")}
    assert (met["response"].verdict, met["response"].measured) == (Verdict.MET, 3.0)
    assert (met["recovery"].verdict, met["recovery"].measured) == (Verdict.MET, 30.0)
    assert met["response"].reason == "level 1: within 5s"
    slow = {r.name: r for r in judge_level(Level(2, 1, 10), history(ACKED), 10 * S, 30.0, "")}
    assert slow["response"].verdict is slow["recovery"].verdict is Verdict.MISSED
    none = judge_level(quick, history({"acknowledged": False, "response": True}), 10 * S, None, "x")
    assert [(r.verdict, r.reason) for r in none] == [
        (Verdict.UNKNOWN, "no manual step marked `response: true` was acknowledged"),
        (Verdict.UNKNOWN, "x"),
    ]


def test_the_commitments_levels_are_the_defaults_and_drills_yaml_overrides_them() -> None:
    assert resolve_level(1, {}) == Level(1, 15 * 60, 3600)
    assert resolve_level(3, {}) == Level(3, 3600, 24 * 3600)
    mine = {1: DEFAULT_LEVELS[2], 4: DEFAULT_LEVELS[3]}
    assert resolve_level(1, mine) == Level(1, 30 * 60, 4 * 3600)
    assert resolve_level(4, mine).number == 4


def test_a_level_nobody_defined_is_refused_at_its_line(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "version: 1\nname: s\nlevel: 7\nprobes:\n  p: {kind: tcp, host: 127.0.0.1, port: 1}\n"
        "service_probe: p\nsteps:\n  - wait: 1s\n"
    )
    config = tmp_path / "drills.yaml"
    config.write_text("levels:\n  4: {respond: 2h, recover: 2d}\n")
    with pytest.raises(ScenarioError) as found:
        load_scenario(scenario, config=config)
    assert [str(p) for p in found.value.problems] == [
        f"{scenario}:3: level: no incident level 7 (levels: 1, 2, 3, 4; define more under "
        "`levels:` in drills.yaml)"
    ]
    scenario.write_text(scenario.read_text().replace("level: 7", "level: 4"))
    assert load_scenario(scenario, config=config).level == Level(4, 7200, 2 * 86400)


def test_an_automatic_acknowledgement_is_measured_but_said_to_be_no_persons() -> None:
    auto = ACKED | {"via": "auto"}
    [response, _] = judge_level(Level(1, 5, 60), history(auto), 10 * S, 30.0, "")
    assert (response.measured, response.reason) == (3.0, AUTO_RESPONSE)
