"""The source of the process agent sent to a host: drills.proctree, drills.pidfile and
drills.hosts.agent_main, in that order, as one script with their `drills` imports left out
(each name they import is defined above it), one `from __future__` line at the top, and
without agent_main's own `__main__` call."""

from __future__ import annotations

import functools
import inspect
import json
from types import ModuleType
from typing import Any

from drills import errors, pidfile, proctree
from drills.hosts import agent_main

ERRORS = "class DrillsError(Exception):\n    pass\n\n\nclass TargetError(DrillsError):\n    pass\n"


def _body(module: ModuleType) -> str:
    kept, skipping = [], False
    for line in inspect.getsource(module).splitlines():
        if line.startswith(("from drills", "from __future__")):
            skipping = line.endswith("(")  # a parenthesized import goes on to its ")"
        elif skipping:
            skipping = line != ")"
        else:
            kept.append(line)
    return "\n".join(kept)


@functools.cache
def agent_source() -> str:
    assert issubclass(errors.TargetError, errors.DrillsError)  # what ERRORS stands for
    parts = [_body(m) for m in (proctree, pidfile, agent_main)]
    script = "\n\n".join(["from __future__ import annotations", ERRORS, *parts])
    # The caller appends the call (drills.hosts.ssh): no argument goes on a command line.
    return script[: script.index('if __name__ == "__main__":')]


def agent_program(op: str, args: dict[str, Any]) -> str:
    """The agent with its call: what `python3 -` reads on the host's standard input."""
    return agent_source() + f"sys.exit(main(['-', {op!r}, {json.dumps(args)!r}]))\n"
