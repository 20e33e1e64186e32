"""Faults: the nemesis. Each module registers step kinds with `disruptive = True`."""

from __future__ import annotations

import sys

from drills.registry import import_all

import_all(sys.modules[__name__])
