"""Links a scenario declares itself (`network:`), carried by drills' own proxy or a Toxiproxy."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Literal

from pydantic import Field, model_validator

from drills.errors import DrillsError
from drills.history import Event
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.model import StrictModel
from drills.network.addresses import AddressPolicy, is_wildcard, split_endpoint, static_refusal
from drills.network.control import LinkEnds, Network
from drills.network.proxy import Proxy, ProxyError
from drills.network.toxiproxy import ToxiproxyClient


def _address(text: str) -> tuple[str, int]:
    return split_endpoint(text)


class LinkSpec(StrictModel):
    client: str = Field(description="the site that connects (e.g. clients, b)")
    server: str = Field(description="the site it connects to (e.g. a)")
    listen: str | None = Field(None, description="HOST:PORT the link listens on")
    upstream: str | None = Field(None, description="HOST:PORT the link forwards to")

    @model_validator(mode="after")
    def _addresses(self) -> LinkSpec:
        if self.listen is not None and is_wildcard(_address(self.listen)[0]):
            raise ValueError(
                f"listen {self.listen}: drills' proxy does not listen on every address; "
                "give a specific one (127.0.0.1:PORT, or this host's address)"
            )
        if self.upstream is not None and (problem := static_refusal(_address(self.upstream)[0])):
            raise ValueError(f"upstream {problem}")
        if (self.listen is None) != (self.upstream is None):
            raise ValueError("give both listen and upstream (drills creates the link), or neither")
        return self


class NetworkSpec(StrictModel):
    toxiproxy: str | None = Field(
        None, description="URL of a Toxiproxy server (or `drills proxy`); default: drills' own"
    )
    token: str | None = Field(
        None,
        description="bearer token for `drills proxy` (default: $DRILLS_PROXY_TOKEN); "
        "write ${env:NAME} or ${file:PATH}, never the token itself",
    )
    links: dict[str, LinkSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _embedded_links_are_created(self) -> NetworkSpec:
        if self.toxiproxy is None:
            missing = [n for n, link in self.links.items() if link.listen is None]
            if missing:
                raise ValueError(
                    f"links {', '.join(missing)} need listen and upstream: drills' own proxy "
                    "creates every link (or set toxiproxy: URL to use existing proxies)"
                )
        return self

    def upstreams(self) -> list[tuple[str, int]]:
        return [_address(link.upstream) for link in self.links.values() if link.upstream]

    def ends(self) -> dict[str, LinkEnds]:
        return {name: LinkEnds(link.client, link.server) for name, link in self.links.items()}


@JOURNAL.register("toxiproxy-link")
class ToxiproxyLink(JournalEntry):
    """A link of a Toxiproxy server the drill is about to use (and, if `created`, create):
    recovered by deleting what the drill created and healing what it borrowed. The token is not
    journaled: `drills recover` sends $DRILLS_PROXY_TOKEN."""

    op: Literal["toxiproxy-link"] = "toxiproxy-link"
    subject = "link"
    url: str
    link: str
    created: bool = False

    def undo(self, recovery: Recovery) -> str | None:
        client = ToxiproxyClient(self.url)
        if self.created:
            client.delete(self.link)
            return f"deleted toxiproxy link {self.link}"
        client.heal(self.link)
        return f"healed toxiproxy link {self.link}"


class OpenNetwork:
    """The scenario's links, opened before the drill and closed after it."""

    def __init__(
        self,
        spec: NetworkSpec,
        events: Callable[[Event], None],
        journal: Callable[[JournalEntry], None] = lambda entry: None,
    ) -> None:
        self.spec = spec
        self.events = events
        self.journal = journal
        self.proxy: Proxy | None = None
        self.client: ToxiproxyClient | None = None
        self.created: list[str] = []

    def open(self) -> Network:
        try:
            return self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> Network:
        if self.spec.toxiproxy is None:
            self.proxy = Proxy(
                lambda link, change, at: self.events(Event("proxy", link, change, at)),
                AddressPolicy().declaring(self.spec.upstreams()),
            )
            self.proxy.start()
            for name, link in self.spec.links.items():
                assert link.listen and link.upstream
                self.proxy.add_link(name, _address(link.upstream), _address(link.listen))
                self.created.append(name)
            return Network(self.proxy, self.spec.ends())
        self.client = ToxiproxyClient(
            self.spec.toxiproxy,
            lambda link, change, at: self.events(Event("toxiproxy", link, change, at)),
            token=self.spec.token,
        )
        existing = self.client.proxies()
        for name, link in self.spec.links.items():
            created = bool(link.listen and link.upstream)
            self.journal(ToxiproxyLink(url=self.spec.toxiproxy, link=name, created=created))
            if link.listen and link.upstream:
                if name in existing:
                    raise DrillsError(f"toxiproxy already has a proxy named {name!r}")
                self.client.create(name, link.listen, link.upstream)
                self.created.append(name)
            elif name not in existing:
                raise DrillsError(
                    f"toxiproxy at {self.spec.toxiproxy} has no proxy {name!r} "
                    f"(it has: {', '.join(existing) or 'none'})"
                )
        return Network(self.client, self.spec.ends())

    def close(self) -> None:
        if self.client is not None:
            for name in self.created:
                with contextlib.suppress(ProxyError):  # the drill's record says what failed
                    self.client.delete(name)
        if self.proxy is not None:
            self.proxy.stop()
        self.created = []
        self.proxy = None
        self.client = None
