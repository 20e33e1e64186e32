"""The step contract: a step is typed configuration plus `run`.

Faults (the nemesis) are steps with `disruptive = True` whose `run` may push a revert onto the
context's stack; the runner reverts whatever is left on every exit path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import Field

from drills.abilities import Ability
from drills.errors import StepError
from drills.history import StepEvent
from drills.journal import JournalEntry
from drills.model import StrictModel
from drills.network.control import Network
from drills.registry import Registry
from drills.targets import Resolving, Target

if TYPE_CHECKING:
    from drills.labs.base import LabConfig
    from drills.openloop import ProbeRunner
    from drills.operator import Operator

A = TypeVar("A")
# What a revert undoes, e.g. ("pause", "site-a") or ("link", "replication", "latency-3"):
# matched whole or by its leading parts, never by string prefix.
RevertKey = tuple[str, ...]


@dataclass
class Revert:
    key: RevertKey
    description: str
    action: Callable[[], None]


@dataclass
class RevertStack:
    """What the drill injected and has not yet undone, newest last."""

    items: list[Revert] = field(default_factory=list)

    def push(self, revert: Revert) -> None:
        self.items.append(revert)

    def drop(self, *prefix: str) -> list[Revert]:
        """Forget every revert whose key starts with `prefix` (something else undid them)."""
        dropped = [r for r in self.items if r.key[: len(prefix)] == prefix]
        self.items = [r for r in self.items if r.key[: len(prefix)] != prefix]
        return dropped

    def undo(self, key: RevertKey) -> Revert | None:
        """Undo the newest fault with this key now, and forget it only once that worked: if
        undoing fails, the final cleanup tries again."""
        for revert in reversed(self.items):
            if revert.key == key:
                revert.action()
                self.items.remove(revert)
                return revert
        return None

    def undo_all(self, *prefix: str) -> list[Revert]:
        """`undo` every fault whose key starts with `prefix`, newest first."""
        done = []
        for revert in reversed([r for r in self.items if r.key[: len(prefix)] == prefix]):
            revert.action()
            self.items.remove(revert)
            done.append(revert)
        return done

    def revert_all(self, report: Callable[[str], None]) -> list[str]:
        """Undo everything, newest first; carry on past failures and return them."""
        errors: list[str] = []
        while self.items:
            revert = self.items.pop()
            try:
                revert.action()
                report(f"reverted: {revert.description}")
            except Exception as exc:
                errors.append(f"could not revert {revert.description}: {exc}")
        return errors


@dataclass
class StepContext:
    targets: dict[str, Target]
    probes: dict[str, ProbeRunner]
    reverts: RevertStack
    variables: dict[str, str]
    stable: int
    progress: Callable[[str], None]
    network: Network | None = None
    journal: Callable[[JournalEntry], None] = lambda entry: None
    run_id: str = ""
    sites: dict[str, list[Target]] = field(default_factory=dict)  # a lab's site -> its nodes
    resolved: dict[str, str] = field(default_factory=dict)  # role target -> node, this step
    # What this step found out, for the record (an incident's xid, a restore's timings).
    facts: dict[str, Any] = field(default_factory=dict)
    done: dict[str, StepEvent] = field(default_factory=dict)  # named steps already run
    operator: Operator | None = None  # acknowledges manual steps
    _serial: int = 0

    def serial(self) -> int:
        """A number unique within the drill, for naming injected faults."""
        self._serial += 1
        return self._serial

    def named(self, name: str) -> StepEvent:
        """The earlier step called `name` (validation checked that one exists)."""
        try:
            return self.done[name]
        except KeyError:
            raise StepError(f"no earlier step named {name!r} has run") from None

    def links(self) -> Network:
        if self.network is None:
            raise StepError("this drill has no network links to act on")
        return self.network

    def target(self, name: str) -> Target:
        try:
            target = self.targets[name]
        except KeyError:
            raise StepError(f"unknown target {name!r}") from None
        if isinstance(target, Resolving):
            node, target = target.resolve()
            self.resolved[name] = node
        return target

    def resolutions(self) -> str:
        """`leader = a1`: the nodes role targets resolved to in this step, for its record."""
        return ", ".join(f"{role} = {node}" for role, node in self.resolved.items())

    def target_as(self, name: str, ability: Ability[A]) -> A:
        """Target `name` through the ability a step needs (validation checked it has it)."""
        found = ability.of(self.target(name))
        if found is None:
            raise StepError(f"{name} {ability.lacks}")
        return found


class StepConfig(StrictModel):
    kind: str
    name: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="names the step so that a later step can refer to it "
        "(e.g. `restore: {before: drop}`)",
    )
    starts_rto: bool | None = Field(
        None,
        description="whether this step starts the RTO clock (default: faults do); set false on "
        "a fault that does not touch the service, such as cutting replication",
    )
    # The key a scalar fills: `- kill: site-a` means `- kill: {target: site-a}`.
    shorthand: ClassVar[str | None] = None
    disruptive: ClassVar[bool] = False
    needs: ClassVar[Ability[Any] | None] = None  # the ability the step's targets must have
    site_needs: ClassVar[Ability[Any] | None] = None  # ... and every node of its sites
    implicit_keys: ClassVar[frozenset[str]] = frozenset({"kind"})  # the step's YAML key

    @property
    def target_name(self) -> str | None:
        value = getattr(self, "target", None)
        return value if isinstance(value, str) else None

    @property
    def target_names(self) -> list[str]:
        """Every target this step acts on, for validation."""
        return [self.target_name] if self.target_name is not None else []

    @property
    def required_ability(self) -> Ability[Any] | None:
        """The ability this step's targets must have."""
        return self.needs

    @property
    def link_names(self) -> list[str]:
        """Links this step acts on, for validation; `all` is not a name."""
        value = getattr(self, "link", None)
        return [value] if isinstance(value, str) and value != "all" else []

    @property
    def step_refs(self) -> list[str]:
        """Names of earlier steps this step refers to, for validation."""
        return []

    def lab_problems(self, lab: LabConfig | None) -> list[tuple[tuple[str, ...], str]]:
        """What this step cannot do with the scenario's lab, for validation: each a key under
        the step and a message."""
        return []

    @property
    def site_names(self) -> list[str]:
        """Sites this step names, for validation."""
        return []

    @property
    def probe_name(self) -> str | None:
        value = getattr(self, "probe", None)
        return value if isinstance(value, str) else None

    @property
    def starts_rto_clock(self) -> bool:
        return self.disruptive if self.starts_rto is None else self.starts_rto

    def describe(self) -> str:
        return self.kind

    def run(self, ctx: StepContext) -> str:
        """Carry out the step; return a short detail for the history.

        Raise StepError (or let a target's TargetError through) when it fails."""
        raise NotImplementedError


STEPS: Registry[StepConfig] = Registry("step", group="drills.steps")
