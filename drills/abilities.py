"""Optional abilities of targets, as Jepsen separates `DB` from `Kill` and `Pause`.

Each ability is a method-only Protocol (so that `issubclass` answers for a class before any
target exists) wrapped with how to tell a user that a target lacks it. A lab declares the class
of each node's target (`Lab.nodes_for`), a scenario's own targets derive theirs from their spec,
and a step names the ability it needs: `drills validate` refuses a step whose target's class
lacks it, and at run time the step fetches its target through that ability
(`StepContext.target_as`). An ability beyond these (the container engine's) is declared the same
way next to the class that provides it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from drills.journal import JournalEntry

A = TypeVar("A")


class Ability(Generic[A]):
    def __init__(self, protocol: type[Any], lacks: str, hint: str) -> None:
        self.protocol = protocol
        self.lacks = lacks  # completes "<target> ...", e.g. "cannot be promoted"
        self.hint = hint  # how a scenario's own target gets the ability

    def provided_by(self, cls: type) -> bool:
        return issubclass(cls, self.protocol)

    def of(self, target: object) -> A | None:
        """`target` as this ability, or None when it lacks it."""
        return target if isinstance(target, self.protocol) else None

    def __repr__(self) -> str:
        return f"Ability({self.protocol.__name__})"


@dataclass
class Injection:
    """A fault about to be made: its crash-journal entry, how to make it (saying what was
    done), and how to undo it (and what undoing does). The step pushes the undo and journals
    the entry before it makes the fault."""

    entry: JournalEntry
    make: Callable[[], str]
    undo: Callable[[], None]
    undoing: str


@runtime_checkable
class Signalable(Protocol):
    def send(self, sig: signal.Signals) -> str:
        """Send `sig` to everything the target runs; say what was done."""
        ...

    def pausing(self, called: str) -> Injection:
        """A pause (SIGSTOP, or the engine's freezer) ready to be made; `called` is the
        target's name in the drill, for the journal and the undo's description."""
        ...

    def resume(self) -> str:
        """Resume a target paused by something other than this drill's pause."""
        ...


@runtime_checkable
class Partitionable(Protocol):
    def partitioning(self, peers: list[str], tag: str, run_id: str) -> Injection:
        """Packet filters dropping traffic to and from each peer address or CIDR, tagged
        `tag`, ready to be applied."""
        ...


@runtime_checkable
class Stoppable(Protocol):
    def stopping(self, called: str, timeout_s: float) -> Injection:
        """A stop (then SIGKILL after `timeout_s`) ready to be made, undone by starting."""
        ...

    def start(self) -> None: ...


@runtime_checkable
class Restartable(Protocol):
    def restart(self) -> None: ...


@runtime_checkable
class Promotable(Protocol):
    def promote(self, timeout_s: float) -> None: ...


@runtime_checkable
class Rejoinable(Protocol):
    def rejoin(self, primary: object) -> str:
        """Come back as a streaming standby of `primary`; say how."""
        ...


SIGNAL: Ability[Signalable] = Ability(
    Signalable, "cannot be signalled", "it has no processes to signal"
)
RESTART: Ability[Restartable] = Ability(
    Restartable, "cannot be restarted", "give the target a `start:` command"
)
PARTITION: Ability[Partitionable] = Ability(
    Partitionable,
    "cannot be partitioned",
    "select a container (`container:`, `labels:`, `compose:`) or a host (`host:`)",
)
STOP: Ability[Stoppable] = Ability(
    Stoppable,
    "cannot be stopped and started",
    "select a container, or give a `host:` target a `start:` command",
)
PROMOTE: Ability[Promotable] = Ability(
    Promotable, "cannot be promoted", "give the target a `dsn:` to promote it through"
)
REJOIN: Ability[Rejoinable] = Ability(
    Rejoinable,
    "cannot rejoin as a standby",
    "only a lab's PostgreSQL server can rejoin as a standby",
)


@dataclass(frozen=True)
class NodeSpec:
    """A lab node as validation sees it before the lab exists: what it is, and the class its
    target will be (which says its abilities)."""

    description: str
    target: type

    def has(self, ability: Ability[Any]) -> bool:
        return ability.provided_by(self.target)
