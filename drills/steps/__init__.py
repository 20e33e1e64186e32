"""Step kinds: actions (wait, wait-until, promote, exec) here, faults in `drills.faults`.

Every module that registers step kinds, faults and plugins included, is a `drills.steps` entry
point (pyproject.toml); `STEPS` imports them the first time a kind is looked up.
"""

from __future__ import annotations

from drills.steps.base import STEPS, Revert, RevertStack, StepConfig, StepContext

__all__ = ["STEPS", "Revert", "RevertStack", "StepConfig", "StepContext"]
