"""How a host is named and reached, and the hosts allow-list."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from drills.hosts.spec import HostSpec, host_allowed
from drills.hosts.ssh import Ssh


def spec(**fields: object) -> HostSpec:
    return HostSpec.model_validate({"ssh": "root@dc1-db1", **fields})


@pytest.mark.parametrize("bad", ["-oProxyCommand=x", "root@-p", "a b", "root@", "@host", ""])
def test_nothing_ssh_could_read_as_an_option_is_a_destination(bad: str) -> None:
    with pytest.raises(ValidationError, match="is not USER@HOST or HOST"):
        spec(ssh=bad)


def test_the_command_line_checks_the_host_key_and_never_prompts(tmp_path: Path) -> None:
    argv = Ssh(spec(key=tmp_path / "k", known_hosts=tmp_path / "kh", port=2222), "db").argv("true")
    assert argv[:1] == ["ssh"] and argv[-3:] == ["--", "root@dc1-db1", "true"]
    options = " ".join(argv)
    assert "BatchMode=yes" in options and "StrictHostKeyChecking=yes" in options
    assert f"-i {tmp_path / 'k'} -o IdentitiesOnly=yes" in options
    assert f"UserKnownHostsFile={tmp_path / 'kh'}" in options and "-p 2222" in options


def test_pinned_files_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pinned = spec(key="keys/id", known_hosts="kh").pinned()
    assert pinned["key"] == str(tmp_path / "keys" / "id")
    assert pinned["known_hosts"] == str(tmp_path / "kh")
    assert HostSpec.model_validate(pinned).hostname == "dc1-db1"


def test_the_allow_list_matches_the_host_name_or_address_by_glob() -> None:
    assert host_allowed(["dc1-*", "10.0.0.5"], spec()) == "dc1-*"
    assert host_allowed(["dc2-*"], spec()) is None
    assert host_allowed(["10.0.0.*"], spec(ssh="10.0.0.5")) == "10.0.0.*"
    assert host_allowed([], spec()) is None
