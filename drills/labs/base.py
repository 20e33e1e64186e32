"""The lab contract: `start` returns the lab's targets and variables, `stop` removes it all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from drills.abilities import NodeSpec
from drills.containers.engine import EngineSpec
from drills.history import Event
from drills.journal import JournalEntry
from drills.model import StrictModel
from drills.network.control import LinkEnds, Network
from drills.registry import Registry
from drills.targets import Target

Progress = Callable[[str], None]
EventHook = Callable[[Event], None]


class LabConfig(StrictModel):
    kind: str


@dataclass
class LabHandle:
    variables: dict[str, str]  # for ${lab.NAME} in the scenario
    targets: dict[str, Target]  # by node name
    facts: dict[str, Any] = field(default_factory=dict)  # for the run record
    network: Network | None = None  # links between sites that faults can act on
    sites: dict[str, list[str]] = field(default_factory=dict)  # site -> its nodes


class Lab(ABC):
    Config: ClassVar[type[LabConfig]]
    # Node name -> what it is and the class of its target, which says its abilities.
    nodes: ClassVar[dict[str, NodeSpec]]
    # Site -> its nodes, for faults on a whole site (`site-down`).
    sites: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Variable name -> an example value, used to validate a scenario before the lab exists.
    variables: ClassVar[dict[str, str]]

    def __init__(
        self, config: LabConfig, progress: Progress, events: EventHook | None = None
    ) -> None:
        self.config = config
        self.progress = progress
        self.events = events
        # Set by the runner: records what the lab creates before it creates it (crash journal).
        self.journal: Callable[[JournalEntry], None] = lambda entry: None
        self.engine = EngineSpec.default()  # set by the runner: the scenario's container engine
        self.engines: dict[str, EngineSpec] = {}  # set by the runner: the scenario's `engines`
        self.run_id = ""  # set by the runner: names what the lab creates

    def attach(
        self,
        journal: Callable[[JournalEntry], None],
        run_id: str,
        engine: EngineSpec | None,
        engines: dict[str, EngineSpec],
    ) -> None:
        """What the runner gives the lab before it starts: the crash journal, the run's id and
        the scenario's Docker engines."""
        self.journal, self.run_id = journal, run_id
        self.engine, self.engines = engine or EngineSpec.default(), engines

    @classmethod
    def nodes_for(cls, config: LabConfig) -> dict[str, NodeSpec]:
        """The nodes a lab with this configuration has (for validation)."""
        return dict(cls.nodes)

    @classmethod
    def site_nodes_for(cls, config: LabConfig) -> dict[str, tuple[str, ...]]:
        """The nodes of each site (for validation); none by default."""
        return dict(cls.sites)

    @classmethod
    def links_for(cls, config: LabConfig) -> dict[str, LinkEnds]:
        """The links a lab with this configuration has (for validation); none by default."""
        return {}

    @classmethod
    def sites_for(cls, config: LabConfig) -> set[str]:
        return {
            end for link in cls.links_for(config).values() for end in (link.client, link.server)
        }

    @abstractmethod
    def start(self) -> LabHandle:
        """Start the lab; on failure, leave nothing behind and raise LabError."""

    @abstractmethod
    def stop(self) -> None:
        """Remove everything the lab started or created; safe to call more than once."""

    def before_steps(self) -> None:  # noqa: B027 (a hook most labs do not need)
        """Called once the probes are ready, just before the first step."""

    def keep(self) -> str:
        """Leave the lab running for inspection; return how to find and remove it."""
        raise NotImplementedError


LABS: Registry[Lab] = Registry("lab", group="drills.labs")
