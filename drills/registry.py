"""Registries from a kind name to a class, filled by importing every module of a package.

Adding a fault, step, probe or lab kind is one new module that decorates its class with
`@REGISTRY.register`; nothing else needs to know about it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._kinds: dict[str, type[T]] = {}

    def register(self, kind: str) -> Callable[[type[T]], type[T]]:
        def add(cls: type[T]) -> type[T]:
            if kind in self._kinds:
                raise RuntimeError(f"{self.what} kind {kind!r} registered twice")
            self._kinds[kind] = cls
            return cls

        return add

    def __getitem__(self, kind: str) -> type[T]:
        return self._kinds[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self._kinds

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def items(self) -> list[tuple[str, type[T]]]:
        return sorted(self._kinds.items())


def import_all(package: ModuleType) -> None:
    """Import every module of `package` so that their registrations run."""
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
