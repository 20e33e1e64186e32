"""Probe kinds. Each module registers one kind in `PROBES`; see `probes.base` for the contract."""

from __future__ import annotations

import sys

from drills.registry import import_all
from probes.base import PROBES, Client, Probe, ProbeConfig, Sample, WriteProbe

import_all(sys.modules[__name__])

__all__ = ["PROBES", "Client", "Probe", "ProbeConfig", "Sample", "WriteProbe"]
