"""Step kinds: actions (wait, wait-until, promote, exec) here, faults in `drills.faults`."""

from __future__ import annotations

import sys

import drills.faults  # noqa: F401 - registers the fault steps
from drills.registry import import_all
from drills.steps.base import STEPS, Revert, RevertStack, StepConfig, StepContext

import_all(sys.modules[__name__])

__all__ = ["STEPS", "Revert", "RevertStack", "StepConfig", "StepContext"]
