"""Labs: systems under test that the harness starts before a drill and removes after it."""

from __future__ import annotations

import sys

from drills.labs.base import LABS, Lab, LabConfig, LabHandle
from drills.registry import import_all

import_all(sys.modules[__name__])

__all__ = ["LABS", "Lab", "LabConfig", "LabHandle"]
