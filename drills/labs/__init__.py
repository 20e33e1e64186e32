"""Labs: systems under test that the harness starts before a drill and removes after it.

Every module that registers lab kinds is a `drills.labs` entry point (pyproject.toml); `LABS`
imports them the first time a kind is looked up.
"""

from __future__ import annotations

from drills.labs.base import LABS, Lab, LabConfig, LabHandle

__all__ = ["LABS", "Lab", "LabConfig", "LabHandle"]
