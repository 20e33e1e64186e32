"""The lab contract: `start` returns the lab's targets and variables, `stop` removes it all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from drills.model import StrictModel
from drills.registry import Registry
from drills.targets import Target

Progress = Callable[[str], None]


class LabConfig(StrictModel):
    kind: str


@dataclass
class LabHandle:
    variables: dict[str, str]  # for ${lab.NAME} in the scenario
    targets: dict[str, Target]  # by node name
    facts: dict[str, Any] = field(default_factory=dict)  # for the run record


class Lab(ABC):
    Config: ClassVar[type[LabConfig]]
    # Node name -> what it is; and the abilities every node has.
    nodes: ClassVar[dict[str, str]]
    node_abilities: ClassVar[frozenset[str]]
    # Variable name -> an example value, used to validate a scenario before the lab exists.
    variables: ClassVar[dict[str, str]]

    def __init__(self, config: LabConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress

    @abstractmethod
    def start(self) -> LabHandle:
        """Start the lab; on failure, leave nothing behind and raise LabError."""

    @abstractmethod
    def stop(self) -> None:
        """Remove everything the lab started or created; safe to call more than once."""

    def keep(self) -> str:
        """Leave the lab running for inspection; return how to find and remove it."""
        raise NotImplementedError


LABS: Registry[Lab] = Registry("lab")
