"""The Patroni lab's environment: nothing that reconfigures its servers, none of drills' secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.patroni.lab_setup import lab_env


def test_the_members_get_neither_harness_secrets_nor_foreign_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_SIGNING_KEY", "signing-key-value")
    monkeypatch.setenv("DRILLS_PROXY_TOKEN", "proxy-token-value")
    monkeypatch.setenv("PGPORT", "5999")
    monkeypatch.setenv("DRILLS_TEST_KEPT", "kept")
    env = lab_env(tmp_path)
    assert not {"DRILLS_SIGNING_KEY", "DRILLS_PROXY_TOKEN", "PGPORT"} & set(env)
    assert env["DRILLS_TEST_KEPT"] == "kept" and env["TMPDIR"] == str(tmp_path)
