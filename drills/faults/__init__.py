"""Faults: the nemesis. Each module registers step kinds with `disruptive = True` and is
declared as a `drills.steps` entry point in pyproject.toml."""
