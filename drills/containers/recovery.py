"""`drills recover` for containers: undo what a dead run's journal says it did on an engine."""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from drills.containers import iptables
from drills.containers.engine import EngineSpec, connect


class Engines:
    """One client per engine named in the journal."""

    def __init__(self) -> None:
        self.clients: dict[str, docker.DockerClient] = {}

    def get(self, entry: dict[str, Any]) -> docker.DockerClient:
        spec = EngineSpec.model_validate(entry.get("engine") or {})
        key = spec.model_dump_json()
        if key not in self.clients:
            self.clients[key] = connect(spec)
        return self.clients[key]


def undo(entry: dict[str, Any], engines: Engines) -> str | None:
    """Undo one journal entry; return what was done (None: nothing was left to undo).

    Raises DrillsError or a docker error when the engine cannot be reached or refuses."""
    from drills.labs.docker_postgres_pair import remove_lab

    op = entry["op"]
    client = engines.get(entry)
    if op == "iptables" and entry.get("run"):
        iptables.remove_helpers(client, str(entry["run"]))  # one may have been running
    target = entry.get("target") or str(entry.get("id", ""))[:12]
    if op == "docker-lab":
        removed = remove_lab(client, str(entry["label"]))
        return f"removed docker lab {entry['label']} ({len(removed)} objects)" if removed else None
    try:
        container = client.containers.get(str(entry["id"]))
    except docker.errors.NotFound:
        return None  # gone: nothing to restore
    if op == "container-pause":
        if container.status == "paused":
            container.unpause()
            return f"unpaused container {target}"
    elif op == "container-stop":
        if container.status in ("exited", "created"):
            container.start()
            return f"started container {target}"
    elif op == "disconnect":
        network = str(entry["network"])
        attached = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        if network not in attached:
            client.networks.get(network).connect(container, aliases=entry.get("aliases") or None)
            return f"reconnected container {target} to {network}"
    elif op == "iptables" and container.status in ("running", "paused"):
        image = str(entry.get("helper") or EngineSpec.default().helper())
        iptables.remove(client, image, container.id or "", entry["rules"], "recover")
        return f"removed the drill's iptables rules from container {target}"
    return None
