"""Children of drills never get drills' own secrets (issue 15: secrets never reach an output)."""

from __future__ import annotations

import pytest

from drills.childenv import HARNESS_SECRETS, child_environ, without_harness_secrets


@pytest.fixture
def harness_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_SIGNING_KEY", "signing-key-value")
    monkeypatch.setenv("DRILLS_PROXY_TOKEN", "proxy-token-value")
    monkeypatch.setenv("DRILLS_SIGNING_KEY_FILE", "/etc/drills/key")
    monkeypatch.setenv("DRILLS_TEST_KEPT", "kept")


def test_the_list_names_the_signing_key_and_the_proxy_token() -> None:
    assert set(HARNESS_SECRETS) == {"DRILLS_SIGNING_KEY", "DRILLS_PROXY_TOKEN"}


@pytest.mark.usefixtures("harness_secrets")
def test_a_child_gets_everything_but_the_harness_secrets() -> None:
    env = child_environ()
    assert not set(HARNESS_SECRETS) & set(env)
    assert env["DRILLS_SIGNING_KEY_FILE"] == "/etc/drills/key"  # a path, not a secret
    assert env["DRILLS_TEST_KEPT"] == "kept"


@pytest.mark.usefixtures("harness_secrets")
def test_extra_variables_are_added_last() -> None:
    assert child_environ(DRILLS_TEST_KEPT="other")["DRILLS_TEST_KEPT"] == "other"


def test_without_harness_secrets_leaves_its_argument_alone() -> None:
    given = {"DRILLS_PROXY_TOKEN": "t", "PATH": "/bin"}
    assert without_harness_secrets(given) == {"PATH": "/bin"}
    assert given == {"DRILLS_PROXY_TOKEN": "t", "PATH": "/bin"}
