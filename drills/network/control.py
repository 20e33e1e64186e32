"""What a link fault needs from whatever carries the link: drills' proxy or a Toxiproxy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from drills.network.toxics import Toxic


class LinkControl(Protocol):
    def set_enabled(self, link: str, enabled: bool) -> None: ...

    def add_toxic(self, link: str, toxic: Toxic) -> None: ...

    def remove_toxic(self, link: str, toxic: str) -> None: ...

    def heal(self, link: str) -> None:
        """Enable the link and remove every toxic."""
        ...


@dataclass(frozen=True)
class LinkEnds:
    """A link carries connections from `client` (the side that connects) to `server`."""

    client: str
    server: str

    def touches(self, site: str) -> bool:
        return site in (self.client, self.server)


@dataclass
class Network:
    control: LinkControl
    links: dict[str, LinkEnds] = field(default_factory=dict)

    def between(self, one: str, other: str) -> list[str]:
        return [n for n, e in self.links.items() if {e.client, e.server} == {one, other}]

    def touching(self, site: str) -> list[str]:
        return [n for n, e in self.links.items() if e.touches(site)]
