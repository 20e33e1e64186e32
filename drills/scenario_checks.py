"""Checks across a scenario's parts that no single model can make: that targets name nodes
the lab has, that steps name targets, links, sites and probes that exist, and that every
target a step acts on has the ability the step needs. A lab node's abilities are those of the
class the lab declares for it (`Lab.nodes_for`), so they are known before the lab exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drills.abilities import PROMOTE, Ability, NodeSpec
from drills.configfile import indexed_key
from drills.errors import Problem
from drills.labs import LABS, Lab
from drills.labs.docker_sites import SITES, Sites
from drills.steps import StepConfig
from drills.yamlsource import Path_, Source

if TYPE_CHECKING:
    from drills.scenario import Scenario, TargetSpec


class CrossCheck:
    def __init__(self, scenario: Scenario, source: Source) -> None:
        self.scenario = scenario
        self.source = source
        self.problems: list[Problem] = []
        self.lab: type[Lab] | None = LABS[scenario.lab.kind] if scenario.lab else None
        self.nodes: dict[str, NodeSpec] = (
            self.lab.nodes_for(scenario.lab) if self.lab and scenario.lab else {}
        )
        self.probes = ", ".join(sorted(scenario.probes))

    def add(self, path: Path_, message: str) -> None:
        self.problems.append(
            Problem(self.source.file, self.source.line_of(path), indexed_key(path), message)
        )

    def run(self) -> list[Problem]:
        self.targets()
        named: set[str] = set()
        for index, step in enumerate(self.scenario.steps):
            where = ("steps", index, step.kind)
            self.step_names(index, step, named)
            self.step_targets(where, step)
            self.step_links(where, step)
            for key, message in step.lab_problems(self.scenario.lab):
                self.add((*where, *key), message)
            if step.probe_name is not None and step.probe_name not in self.scenario.probes:
                self.add(where, f"no probe named {step.probe_name!r} (probes: {self.probes})")
        return self.problems

    def step_names(self, index: int, step: StepConfig, named: set[str]) -> None:
        """Step names are unique, and a step refers only to steps that run before it."""
        for ref in step.step_refs:
            if ref not in named:
                earlier = ", ".join(sorted(named)) or "none"
                self.add(
                    ("steps", index, step.kind),
                    f"no earlier step named {ref!r} (named steps before it: {earlier})",
                )
        if step.name is not None:
            if step.name in named:
                self.add(
                    ("steps", index, step.kind, "name"),
                    f"another step is already named {step.name!r}",
                )
            named.add(step.name)

    def engine(self, path: Path_, name: str | None) -> None:
        if name is not None and name not in self.scenario.engines:
            engines = ", ".join(sorted(self.scenario.engines)) or "none: declare them in `engines`"
            self.add(path, f"no engine named {name!r} (engines: {engines})")

    def sites_reachable(self, sites: Sites) -> None:
        """Sites on two engines reach each other, and the harness reaches both, at an address
        that is not a loopback (each engine's host has its own)."""
        if sites.a.engine == sites.b.engine:
            return
        for node in SITES:
            if sites.of(node).loopback():
                self.add(
                    ("lab", "sites", node),
                    f"site {node} is reached at {sites.of(node).reached_at()}, a loopback: with "
                    "the sites on two engines, publish it on an address the other site and the "
                    "harness reach (`publish`, or `address`)",
                )

    def targets(self) -> None:
        scenario = self.scenario
        sites = getattr(scenario.lab, "sites", None)
        if isinstance(sites, Sites):
            for node in SITES:
                self.engine(("lab", "sites", node, "engine"), sites.of(node).engine)
            self.sites_reachable(sites)
        for name, target in scenario.targets.items():
            if target.cluster is not None:
                self.role_target(name, target.cluster)
            self.engine(("targets", name, "engine"), target.engine)
            if target.lab is None:
                continue
            if scenario.lab is None:
                self.add(
                    ("targets", name, "lab"),
                    "this target is a lab node, and the scenario has no lab",
                )
            elif target.lab not in self.nodes:
                self.add(
                    ("targets", name, "lab"),
                    f"no node {target.lab!r} in a {scenario.lab.kind} lab "
                    f"(nodes: {', '.join(self.nodes)})",
                )

    def role_target(self, name: str, cluster: str) -> None:
        spec = self.scenario.targets.get(cluster)
        if spec is None or spec.patroni is None:
            clusters = [n for n, t in self.scenario.targets.items() if t.patroni is not None]
            self.add(
                ("targets", name, "cluster"),
                f"{cluster!r} is not a `patroni:` target "
                f"(Patroni clusters: {', '.join(clusters) or 'none declared'})",
            )
        elif not spec.patroni.members:
            self.add(
                ("targets", name, "cluster"),
                f"a role target acts on a member of {cluster}: list them under "
                f"`targets.{cluster}.patroni.members` (NAME: {{pid_file: PATH}})",
            )

    def step_targets(self, where: Path_, step: StepConfig) -> None:
        known = ", ".join(sorted(self.scenario.targets)) or "none declared"
        needs = step.required_ability
        for name in step.target_names:
            spec = self.scenario.targets.get(name)
            if spec is None:
                self.add(where, f"no target named {name!r} (targets: {known})")
            elif needs is not None:
                lacking = self.lacking(name, spec, step.kind, needs)
                if lacking:
                    self.add(where, lacking)

    def lacking(self, name: str, spec: TargetSpec, kind: str, needs: Ability[Any]) -> str | None:
        """Why target `name` cannot be used with step `kind`, or None if it can (or if its
        node is unknown, which is reported at the target)."""
        cls = spec.target_class(self.nodes, self.scenario.targets)
        if cls is None or needs.provided_by(cls):
            return None
        refused = getattr(cls, "refuses", {}).get(kind)  # a class that says why it cannot
        if refused:
            return f"target {name!r}: {refused}"
        hint = needs.hint
        if spec.cluster is not None:
            hint = f"{name} is a member of the Patroni cluster {spec.cluster}: " + (
                "Patroni decides who is promoted; use switchover or failover on the cluster"
                if needs is PROMOTE
                else needs.hint.replace("the target", "every member")
            )
        if spec.lab is not None:
            able = [node for node, node_spec in self.nodes.items() if node_spec.has(needs)]
            hint = f"{spec.lab} is {self.nodes[spec.lab].description}; " + (
                f"nodes that can: {', '.join(able)}" if able else "no node of this lab can"
            )
        return f"target {name!r} cannot be used with {kind}: it {needs.lacks} ({hint})"

    def step_links(self, where: Path_, step: StepConfig) -> None:
        if not (step.link_names or step.site_names):
            return
        scenario = self.scenario
        if scenario.network is not None:
            links = scenario.network.ends()
        else:
            links = self.lab.links_for(scenario.lab) if self.lab and scenario.lab else {}
        sites = {end for e in links.values() for end in (e.client, e.server)}
        if not links:
            self.add(
                where, "no network links to act on: declare `network:` or use a lab with links"
            )
            return
        for link in step.link_names:
            if link not in links:
                self.add(where, f"no link named {link!r} (links: {', '.join(links)})")
        for site in step.site_names:
            if site not in sites:
                self.add(where, f"no site named {site!r} (sites: {', '.join(sorted(sites))})")
            elif step.site_needs is not None:
                self.site_nodes(where, site, step.site_needs)

    def site_nodes(self, where: Path_, site: str, needs: Ability[Any]) -> None:
        """Every node of `site` must have the ability a whole-site step needs."""
        scenario = self.scenario
        members = self.lab.site_nodes_for(scenario.lab) if self.lab and scenario.lab else {}
        if not members.get(site):
            known = ", ".join(sorted(members))
            self.add(
                where,
                f"site {site!r} has no nodes to act on "
                + (
                    f"(sites with nodes: {known})"
                    if known
                    else "(a whole-site fault needs a lab that declares its sites' nodes, "
                    "such as dual-active)"
                ),
            )
            return
        for node in members[site]:
            if not self.nodes[node].has(needs):
                self.add(where, f"site {site!r}: node {node} {needs.lacks}")


def cross_check(scenario: Scenario, source: Source) -> list[Problem]:
    return CrossCheck(scenario, source).run()
