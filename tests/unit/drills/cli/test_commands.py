"""The command line as a package: every command has a handler, the help lists them in their
usual order, the shared options are declared once, and errors map to exit statuses in `main`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from drills import cli
from drills.cli import common
from drills.errors import EXIT_ERROR, EXIT_OK

COMMANDS = [
    "run",
    "validate",
    "check",
    "ack",
    "show",
    "report",
    "due",
    "schedule",
    "metrics",
    "exporter",
    "verify",
    "store",
    "recover",
    "list",
    "proxy",
]
CLI_DIR = Path(cli.__file__).parent


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_the_commands_in_help_order_each_with_a_handler() -> None:
    found = subcommands()
    assert list(found) == COMMANDS
    for name, parser in found.items():
        assert callable(parser.get_default("handler")), name


@pytest.mark.parametrize("option", ["--reports-dir", "--schedule", "--config"])
def test_shared_options_are_declared_once(option: str) -> None:
    declaring = [
        path.name for path in sorted(CLI_DIR.glob("*.py")) if f'"{option}"' in path.read_text()
    ]
    assert declaring == ["common.py"]


def test_reports_dir_defaults_alike_in_every_command() -> None:
    having = {
        name: parser.get_default("reports_dir")
        for name, parser in subcommands().items()
        if any("--reports-dir" in a.option_strings for a in parser._actions)
    }
    assert set(having) == {"run", "show", "report", "due", "metrics", "exporter", "verify"}
    assert set(having.values()) == {common.REPORTS_DIR}


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == EXIT_ERROR
    assert "usage: drills" in capsys.readouterr().out


def test_a_drills_error_is_reported_on_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert cli.main(["verify", "--reports-dir", str(missing)]) == EXIT_ERROR
    assert capsys.readouterr().err == f"drills: {missing}: no such directory\n"


def test_list_names_the_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("steps (faults marked *): ")
    assert "\nprobes: " in out and "\nlabs: " in out
