from __future__ import annotations

import pytest

from drills.errors import DrillsError
from drills.participants import Participant, everyone, parse_participant


def test_name_and_role_from_the_command_line() -> None:
    assert parse_participant(" ana : dba ") == Participant(name="ana", role="dba")
    for bad in ("ana", "ana:", ":dba", ""):
        with pytest.raises(DrillsError, match=r"write NAME:ROLE, e\.g\. ana:dba"):
            parse_participant(bad)


def test_the_command_line_adds_to_the_scenario_and_may_change_a_role() -> None:
    scenario = [Participant(name="ana", role="dba"), Participant(name="bo", role="support")]
    given = [Participant(name="bo", role="manager"), Participant(name="cy", role="dba")]
    found = everyone(scenario, given)
    assert [(p.name, p.role) for p in found] == [("ana", "dba"), ("bo", "manager"), ("cy", "dba")]
