"""The built-in probe kinds: a plugin package like any other.

Each module registers its kinds in `drills.probe.PROBES` and is declared as a `drills.probes`
entry point in pyproject.toml; the core never imports these modules by name. The contract is
re-exported here for code written against `probes` before it moved to `drills.probe`.
"""

from __future__ import annotations

from drills.probe import PROBES, Client, Probe, ProbeConfig, Sample, WriteProbe

__all__ = ["PROBES", "Client", "Probe", "ProbeConfig", "Sample", "WriteProbe"]
