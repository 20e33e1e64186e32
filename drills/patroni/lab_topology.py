"""The `patroni` lab's shape, known from its configuration before anything runs: its nodes
(what each is, and the class that says its abilities), its sites and its links.

Every path between sites is a link of drills' fault proxy:

    clients-a1        HAProxy -> member a1's PostgreSQL          (clients -> a)
    replication-a1    the other site's replicas -> a1            (b -> a)
    etcd-a            site a's members -> etcd, the DCS          (a -> witness)
"""

from __future__ import annotations

from drills.abilities import NodeSpec
from drills.network.control import LinkEnds
from drills.patroni.cluster import ClusterTarget
from drills.patroni.lab_config import PatroniLabConfig
from drills.patroni.lab_nodes import BalancerNode, EtcdNode, PatroniMember

WITNESS = "witness"  # etcd's end of each site's link to it: a third site
PATRONI_DECIDES = "Patroni decides which member is primary; use switchover or failover"


def member_node(site: str) -> NodeSpec:
    return NodeSpec(f"a Patroni member at site {site}: {PATRONI_DECIDES}", PatroniMember)


def nodes(cfg: PatroniLabConfig) -> dict[str, NodeSpec]:
    found = {
        name: member_node(site) for site, names in cfg.member_names().items() for name in names
    }
    return found | {
        "cluster": NodeSpec(
            "the Patroni cluster as a whole (switchover, failover, maintenance)", ClusterTarget
        ),
        # Role targets: the member that has the role when the step runs, so a member's class.
        "leader": NodeSpec(
            f"the Patroni leader when the step runs: {PATRONI_DECIDES}", PatroniMember
        ),
        "replica": NodeSpec(
            f"a Patroni replica when the step runs (the least behind): {PATRONI_DECIDES}",
            PatroniMember,
        ),
        "etcd": NodeSpec("etcd, the DCS (a witness at a third site)", EtcdNode),
        "lb": NodeSpec(
            "HAProxy, in front of the members (Patroni's REST health checks)", BalancerNode
        ),
    }


def peer_site(site: str, sites: list[str]) -> str:
    """Who streams from a member of `site` through its replication link: the other site of
    two, the site itself when it is alone, else `peers`."""
    others = [s for s in sites if s != site]
    if not others:
        return site
    return others[0] if len(others) == 1 else "peers"


def links(cfg: PatroniLabConfig) -> dict[str, LinkEnds]:
    sites = list(cfg.members)
    found: dict[str, LinkEnds] = {}
    for site, names in cfg.member_names().items():
        for name in names:
            found[f"clients-{name}"] = LinkEnds("clients", site)
            found[f"replication-{name}"] = LinkEnds(peer_site(site, sites), site)
        found[f"etcd-{site}"] = LinkEnds(site, WITNESS)
    return found


def site_nodes(cfg: PatroniLabConfig) -> dict[str, tuple[str, ...]]:
    return {site: tuple(names) for site, names in cfg.member_names().items()}


def example_variables(cfg: PatroniLabConfig) -> dict[str, str]:
    """Variables with example values, for validating `${lab.NAME}` before the lab exists."""
    passfile = "/tmp/drills-lab-example/pgpass"
    example = f"host=127.0.0.1 port=5432 user=postgres dbname=postgres passfile={passfile}"
    variables = {
        "dsn": example,
        "replica_dsn": example,
        "rest_urls": "http://127.0.0.1:8008,http://127.0.0.1:8009",
        "etcd_url": "http://127.0.0.1:2379",
        "scope": "drills-example",
        "passfile": passfile,
        "dir": "/tmp/drills-lab-example",
    }
    for names in cfg.member_names().values():
        for name in names:
            variables |= {
                f"{name}.dsn": example,
                f"{name}.client_dsn": example,
                f"{name}.rest_url": "http://127.0.0.1:8008",
                f"{name}.port": "5432",
            }
    return variables
