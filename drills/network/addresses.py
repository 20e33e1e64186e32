"""Which addresses the fault proxy may listen on and forward to.

A link forwards to loopback, to the upstreams declared when the proxy was started (the
scenario's links, `drills proxy --link`) and to what an explicit allow-list names
(`--allow-upstream`). Link-local and cloud metadata addresses are refused whatever the
allow-list says, by name and after DNS resolution, and again on every connection: a name that
resolves somewhere else later gains nothing. Links and the API listen on every address
(0.0.0.0, ::) only when that was allowed explicitly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from drills.errors import DrillsError

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Endpoint = tuple[str, int]

_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)
_METADATA_NAMES = (
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class AddressRefused(DrillsError):
    """The proxy does not listen on, or forward to, this address."""


def split_endpoint(text: str) -> Endpoint:
    """HOST:PORT, [V6]:PORT, into (host, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def normal_host(host: str) -> str:
    """One spelling per host: IP literals canonical, names lower case without a final dot."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare.lower().rstrip(".")


def _embedded(ip: IP) -> IP:
    """The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, NAT64), else itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def never_reason(ip: IP) -> str | None:
    """Why an address is refused whatever the allow-list says, or None."""
    ip = _embedded(ip)
    if ip in _METADATA_IPS:
        return "a cloud metadata address"
    if any(ip in net for net in _LINK_LOCAL):
        return "link-local"
    return None


def is_metadata_name(host: str) -> bool:
    name = normal_host(host)
    dotted = (m for m in _METADATA_NAMES if "." in m)
    return name in _METADATA_NAMES or any(name.endswith("." + m) for m in dotted)


def static_refusal(host: str) -> str | None:
    """What is wrong with a host without resolving it: a metadata name or a refused literal."""
    if is_metadata_name(host):
        return f"{host} is a cloud metadata name: always refused"
    try:
        ip = ipaddress.ip_address(normal_host(host))
    except ValueError:
        return None
    reason = never_reason(ip)
    return f"{host} is {reason}: always refused" if reason else None


def is_wildcard(host: str) -> bool:
    return normal_host(host) in WILDCARDS


async def resolve(host: str, port: int) -> list[IP]:
    """The addresses `host` stands for now (a literal without asking DNS)."""
    try:
        return [ipaddress.ip_address(normal_host(host))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise AddressRefused(f"cannot resolve upstream {host}: {exc}") from exc
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return list(dict.fromkeys(found))


def parse_allowance(text: str) -> Network | Endpoint:
    """An allow-list entry: CIDR (10.0.0.0/8), an address (10.0.0.5) or HOST:PORT."""
    entry = text.strip()
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    host, port = split_endpoint(entry)
    return normal_host(host), port


@dataclass(frozen=True)
class AddressPolicy:
    """Where links may listen and forward; the default: loopback only, no wildcard listen."""

    networks: tuple[Network, ...] = ()
    endpoints: frozenset[Endpoint] = field(default_factory=frozenset)
    wildcard_listen: bool = False

    @classmethod
    def from_entries(cls, entries: Iterable[str], wildcard_listen: bool = False) -> AddressPolicy:
        parsed = [parse_allowance(e) for e in entries]
        return cls(
            networks=tuple(p for p in parsed if not isinstance(p, tuple)),
            endpoints=frozenset(p for p in parsed if isinstance(p, tuple)),
            wildcard_listen=wildcard_listen,
        )

    def declaring(self, upstreams: Iterable[Endpoint]) -> AddressPolicy:
        """This policy, also allowing the links declared at start."""
        more = {(normal_host(host), port) for host, port in upstreams}
        return replace(self, endpoints=self.endpoints | more)

    def check_listen(self, host: str) -> None:
        if is_wildcard(host) and not self.wildcard_listen:
            raise AddressRefused(
                f"listening on every address ({host or '*'}) needs an explicit allowance "
                "(drills proxy --allow-wildcard-listen); give a specific address"
            )

    def check_upstream(self, host: str, port: int, ips: Sequence[IP]) -> None:
        """Refuse unless every address `host` resolved to may be reached."""
        if problem := static_refusal(host):
            raise AddressRefused(f"upstream {problem}")
        for ip in ips:
            if reason := never_reason(ip):
                raise AddressRefused(f"upstream {host}:{port} resolves to {ip}, {reason}: refused")
        if (normal_host(host), port) in self.endpoints:
            return
        outside = [ip for ip in ips if not self._reachable(ip)]
        if outside or not ips:
            shown = ", ".join(str(ip) for ip in outside) or "nothing"
            raise AddressRefused(
                f"upstream {host}:{port} ({shown}) is outside loopback and the declared links; "
                "allow it explicitly (drills proxy --allow-upstream CIDR or HOST:PORT)"
            )

    async def vet(self, host: str, port: int) -> list[IP]:
        """Resolve `host` now and return its addresses if every one may be reached."""
        if problem := static_refusal(host):
            raise AddressRefused(f"upstream {problem}")
        ips = await resolve(host, port)
        self.check_upstream(host, port, ips)
        return ips

    def _reachable(self, ip: IP) -> bool:
        plain = _embedded(ip)
        return plain.is_loopback or any(plain in net or ip in net for net in self.networks)
