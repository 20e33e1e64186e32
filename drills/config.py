"""`drills.yaml`: the operator's configuration, kept apart from scenarios.

It holds the blast-radius allow-lists: a fault touches a container only if the container
matches an entry (a name glob, labels, or both), and a host reached over SSH only if its name
or address as the scenario gives it matches a glob of `hosts.allow`. Containers a drill's own
lab created are always allowed; every other container or host is refused before anything is
injected, and with no configuration at all, every one is. And it holds the limits of what
drills reads (`limits.scenario_bytes`).

Found at `--config PATH`, else `$DRILLS_CONFIG`, else `./drills.yaml`, else
`~/.config/drills/drills.yaml` (`$XDG_CONFIG_HOME`).
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from pydantic import Field, model_validator

from drills.configfile import load_model
from drills.levels import LevelObjectives
from drills.model import StrictModel
from drills.yamlsource import MAX_BYTES

ENV = "DRILLS_CONFIG"
FILE = "drills.yaml"


class AllowEntry(StrictModel):
    name: str | None = Field(None, description="container name, shell glob (shop-db-*)")
    labels: dict[str, str] | None = Field(None, description="labels the container must carry")

    @model_validator(mode="after")
    def _something(self) -> AllowEntry:
        if self.name is None and not self.labels:
            raise ValueError("an allow entry gives a name (glob), labels, or both")
        return self

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        if self.name is not None and not fnmatch.fnmatchcase(name, self.name):
            return False
        return all(labels.get(key) == value for key, value in (self.labels or {}).items())

    def describe(self) -> str:
        parts = [f"name {self.name}"] if self.name else []
        parts += [f"{k}={v}" for k, v in sorted((self.labels or {}).items())]
        return " and ".join(parts)


class Containers(StrictModel):
    allow: list[AllowEntry] = Field(default_factory=list, description="containers faults may touch")


class Hosts(StrictModel):
    allow: list[str] = Field(
        default_factory=list,
        description="hosts faults may touch over SSH: names or addresses, shell globs",
    )


class Limits(StrictModel):
    scenario_bytes: int = Field(MAX_BYTES, ge=1, description="largest scenario file read")


class StoreConfig(StrictModel):
    url: str | None = Field(
        None, description="results store, postgresql://USER@HOST:PORT/DB (no password in it)"
    )
    password_file: Path | None = Field(None, description="file holding the store's password")
    lease_ttl: float = Field(
        60.0, gt=0, description="seconds a target lease outlives its holder's last renewal"
    )


class Config(StrictModel):
    version: int = Field(1, ge=1, le=1)
    containers: Containers = Field(default_factory=Containers)
    hosts: Hosts = Field(default_factory=Hosts)
    limits: Limits = Field(default_factory=lambda: Limits.model_validate({}))
    levels: dict[int, LevelObjectives] = Field(
        default_factory=dict,
        description="incident levels by number, over the defaults 1-3 (docs/game-days.md)",
    )
    signing_key_file: Path | None = Field(
        None, description="HMAC key run records are signed with (docs/security.md), outside them"
    )
    store: StoreConfig = Field(
        default_factory=lambda: StoreConfig.model_validate({}),
        description="results store for many runners (docs/store.md)",
    )


def config_path(explicit: Path | None = None) -> Path | None:
    """The configuration file in effect, or None when there is none."""
    if explicit is not None:
        return explicit
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    local = Path(FILE)
    if local.is_file():
        return local
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user = Path(base) / "drills" / FILE
    return user if user.is_file() else None


def load_config(path: Path | None) -> Config:
    return Config.model_validate({}) if path is None else load_model(path, Config, "drills.yaml")


def allowed(config: Config, name: str, labels: dict[str, str]) -> AllowEntry | None:
    """The first entry that lets faults touch this container, if any."""
    return next((e for e in config.containers.allow if e.matches(name, labels)), None)
