"""Where the proxy API's token comes from, and that it never comes from the command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drills import cli
from drills.errors import EXIT_ERROR, DrillsError
from drills.network.tokens import TOKEN_ENV, client_token, read_token_file, server_token

TOKEN = "a-token-of-enough-length"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_token_file_is_read_if_only_its_owner_can(tmp_path: Path) -> None:
    assert read_token_file(write(tmp_path / "t", TOKEN + "\n")) == TOKEN
    with pytest.raises(DrillsError, match="chmod 600"):
        read_token_file(write(tmp_path / "open", TOKEN, 0o644))
    with pytest.raises(DrillsError, match="at least 16"):
        read_token_file(write(tmp_path / "short", "short"))
    (tmp_path / "link").symlink_to(tmp_path / "t")
    with pytest.raises(DrillsError, match="cannot read"):
        read_token_file(tmp_path / "link")


def test_the_server_token_file_then_environment_then_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-1")
    assert server_token(write(tmp_path / "t", TOKEN)) == (TOKEN, False)
    assert server_token(None) == ("from-the-environment-1", False)
    monkeypatch.delenv(TOKEN_ENV)
    token, generated = server_token(None)
    assert generated and len(token) >= 32 and token != server_token(None)[0]


def test_the_client_takes_the_scenarios_token_else_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert client_token() is None
    monkeypatch.setenv(TOKEN_ENV, "env-token")
    assert client_token() == "env-token"
    assert client_token("scenario-token") == "scenario-token"


def test_drills_proxy_takes_no_token_on_the_command_line() -> None:
    with pytest.raises(SystemExit):
        cli.main(["proxy", "--token", TOKEN])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--link", "db=127.0.0.1:0,169.254.169.254:80"], "metadata"),
        (["--link", "db=127.0.0.1:0,10.0.0.5:5432", "--allow-upstream", "10.0.0.0/99"], "CIDR"),
        (["--link", "db=0.0.0.0:0,127.0.0.1:5432"], "every address"),
        (["--api", "0.0.0.0:0"], "every address"),
    ],
)
def test_drills_proxy_refuses_bad_addresses_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["proxy", *argv]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
