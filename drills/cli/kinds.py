"""`drills list`: the kinds this build knows."""

from __future__ import annotations

import argparse

from drills.cli.common import Subparsers, add_command
from drills.errors import EXIT_OK


def add_parsers(sub: Subparsers) -> None:
    add_command(
        sub, "list", _list, help="list the fault, step, probe and lab kinds this build knows"
    )


def _list(args: argparse.Namespace) -> int:
    from drills.labs import LABS
    from drills.probe import PROBES
    from drills.steps import STEPS

    print(
        "steps (faults marked *): "
        + ", ".join(f"{k}{'*' if c.disruptive else ''}" for k, c in STEPS.items())
    )
    print("probes: " + ", ".join(PROBES.kinds()))
    print("labs: " + ", ".join(LABS.kinds()))
    return EXIT_OK
