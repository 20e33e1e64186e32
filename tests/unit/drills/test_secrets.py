"""Secret values are masked wherever the harness writes text."""

from __future__ import annotations

from drills.history import Clock, HistoryLog, Op, Outcome
from drills.secrets import MASK, Redactor


def test_every_occurrence_is_masked() -> None:
    redact = Redactor({"hunter2"})
    assert redact.text("password=hunter2 again hunter2") == f"password={MASK} again {MASK}"


def test_the_longest_secret_is_masked_first_so_no_part_of_it_shows() -> None:
    redact = Redactor({"abc", "abcdef"})
    assert redact.text("x abcdef y abc") == f"x {MASK} y {MASK}"


def test_values_too_short_to_be_secrets_are_left_alone() -> None:
    redact = Redactor({"ab", ""})
    assert redact.secrets == []
    assert redact.text("ab cd") == "ab cd"


def test_secrets_added_later_join_the_ones_known() -> None:
    redact = Redactor({"first-secret"})
    redact.add({"second-secret", "first-secret"})
    assert redact.text("first-secret second-secret") == f"{MASK} {MASK}"
    assert len(redact.secrets) == 2


def test_nested_records_are_masked_in_values_and_lists_never_in_keys() -> None:
    # Keys are the record's structure (probe names, step facts), not data: masking one would
    # change what readers look up (issue 15: masking never touches record keys).
    redact = Redactor({"s3cret"})
    record = {"dsn": "password=s3cret", "s3cret": [1, "a s3cret", {"n": 2.5}], "none": None}
    assert redact.deep(record) == {
        "dsn": f"password={MASK}",
        "s3cret": [1, f"a {MASK}", {"n": 2.5}],
        "none": None,
    }


def test_without_secrets_the_value_is_returned_as_is() -> None:
    record = {"a": ["b"]}
    assert Redactor().deep(record) is record


def test_the_history_never_holds_a_secret() -> None:
    log = HistoryLog(Clock(0, 0), redact=Redactor({"s3cret"}).text)
    log.add_op(Op("reads", 1, 0, 1, Outcome.FAIL, detail="auth failed for s3cret"))
    assert log.history.ops[0].detail == f"auth failed for {MASK}"
