"""The source of the process agent sent to a host: drills.proctree, drills.pidfile and
drills.hosts.agent_main, in that order, as one script with their `drills` imports left out
(each name they import is defined above it) and one `from __future__` line at the top."""

from __future__ import annotations

import functools
import inspect
from types import ModuleType

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
    return "\n\n".join(["from __future__ import annotations", ERRORS, *parts]) + "\n"
