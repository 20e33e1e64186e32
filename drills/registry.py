"""Registries from a kind name to a class, filled from the entry points of installed packages.

A module that defines kinds decorates each class with `@REGISTRY.register("kind")`; the module
itself is declared as an entry point of the registry's group (`drills.probes`, `drills.steps`,
`drills.labs`, `drills.journal`) in its distribution's pyproject.toml. The first time a
registry is asked about kinds, it imports every module of its group, so a kind in another
installed distribution works like a built-in one. A plugin that cannot be imported, or
registers a kind that is taken, is a `PluginError` naming its distribution and entry point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from drills.errors import DrillsError

T = TypeVar("T")
HOME_DISTRIBUTION = "drills"  # declares the built-in kinds


class PluginError(DrillsError):
    """A plugin could not be loaded, or clashes with a kind already registered."""


def describe(entry: EntryPoint) -> str:
    """`entry point 'tcp = probes.tcp' (group drills.probes) of distribution drills 0.1.0`."""
    dist = entry.dist
    owner = f"distribution {dist.name} {dist.version}" if dist is not None else "no distribution"
    return f"entry point '{entry.name} = {entry.value}' (group {entry.group}) of {owner}"


class Registry(Generic[T]):
    def __init__(self, what: str, group: str | None = None) -> None:
        self.what = what
        self._kinds: dict[str, type[T]] = {}
        self._origins: dict[str, str] = {}
        self._group = group
        self._loading = False
        self._failure: PluginError | None = None
        self._lock = threading.RLock()
        self._source: str | None = None  # the entry point being loaded, for messages

    def register(self, kind: str) -> Callable[[type[T]], type[T]]:
        def add(cls: type[T]) -> type[T]:
            origin = self._source or f"module {cls.__module__}"
            if kind in self._kinds and self._kinds[kind] is not cls:
                raise PluginError(
                    f"{self.what} kind {kind!r} from {origin} is already registered by "
                    f"{self._origins[kind]}"
                )
            self._kinds[kind] = cls
            self._origins[kind] = origin
            return cls

        return add

    def __getitem__(self, kind: str) -> type[T]:
        return self._loaded()[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self._loaded()

    def kinds(self) -> list[str]:
        return sorted(self._loaded())

    def items(self) -> list[tuple[str, type[T]]]:
        return sorted(self._loaded().items())

    def origin(self, kind: str) -> str:
        """Where `kind` came from (an entry point and its distribution, or a module)."""
        self._loaded()
        return self._origins[kind]

    def _loaded(self) -> dict[str, type[T]]:
        with self._lock:
            if self._group is not None and not self._loading:
                self._loading = True  # a plugin that looks kinds up while loading sees them so far
                try:
                    self._load(self._group)
                except PluginError as exc:
                    self._failure = exc
                except Exception as exc:  # the metadata itself unreadable: never half a registry
                    self._failure = PluginError(
                        f"cannot read the {self.what} plugins ({self._group}): "
                        f"{type(exc).__name__}: {exc}"
                    )
            if self._failure is not None:
                raise self._failure
            return self._kinds

    def _load(self, group: str) -> None:
        found = sorted(entry_points(group=group), key=_home_first)
        if not any(_distribution(e) == HOME_DISTRIBUTION for e in found):
            raise PluginError(
                f"no built-in {self.what} kinds: the installed drills declares no {group!r} "
                "entry points; reinstall it (make setup, or pip install -e .)"
            )
        for entry in found:
            with self._loading_from(entry):
                try:
                    entry.load()
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(
                        f"cannot load {self.what} plugin: {describe(entry)}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc

    @contextmanager
    def _loading_from(self, entry: EntryPoint) -> Iterator[None]:
        self._source = describe(entry)
        try:
            yield
        finally:
            self._source = None


def _distribution(entry: EntryPoint) -> str | None:
    return entry.dist.name if entry.dist is not None else None


def _home_first(entry: EntryPoint) -> tuple[bool, str, str]:
    """Built-in kinds load first, so a plugin that reuses a kind name is the one named."""
    return _distribution(entry) != HOME_DISTRIBUTION, _distribution(entry) or "", entry.name
