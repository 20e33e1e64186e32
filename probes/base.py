"""The probe contract moved to `drills.probe`; this name stays for plugins written against it."""

from __future__ import annotations

from drills.probe import PROBES, Client, Probe, ProbeConfig, Sample, WriteProbe

__all__ = ["PROBES", "Client", "Probe", "ProbeConfig", "Sample", "WriteProbe"]
