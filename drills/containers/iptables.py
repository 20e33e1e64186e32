"""Packet filters inside a container's network namespace, applied from a helper container.

The helper joins the target's namespace (`--network container:ID`) with NET_ADMIN and runs
`iptables`, so the target's image needs none. Every helper is removed once it has run, and
carries the label `org.drills.helper` so that `drills recover` can find one left behind.
"""

from __future__ import annotations

import contextlib
import shlex
import uuid

import docker
import docker.errors

from drills.containers.engine import engine_error
from drills.errors import EngineError
from drills.signals import held

HELPER_LABEL = "org.drills.helper"
HELPER_TIMEOUT_S = 60


def drop_rules(peer: str, tag: str) -> list[list[str]]:
    """Rules dropping traffic to and from `peer` (an address or CIDR), tagged for recovery."""
    mark = ["-m", "comment", "--comment", tag]
    return [
        ["INPUT", "-s", peer, *mark, "-j", "DROP"],
        ["OUTPUT", "-d", peer, *mark, "-j", "DROP"],
    ]


def rules_script(action: str, rules: list[list[str]], where: str = "in the image") -> str:
    """A shell script adding (`-I`) or deleting (`-D`, idempotent) `rules`."""
    lines = [
        "set -e",
        f"command -v iptables >/dev/null || {{ echo 'no iptables {where}' >&2; exit 127; }}",
    ]
    for rule in rules:
        if action == "-D":
            # Deleting is idempotent: a rule already gone (recovery run twice) is not an error.
            lines.append(
                f"while iptables -w -C {shlex.join(rule)} 2>/dev/null; do "
                f"iptables -w -D {shlex.join(rule)}; done"
            )
        else:
            lines.append(f"iptables -w {action} {shlex.join(rule)}")
    return "\n".join(lines)


def run_helper(
    client: docker.DockerClient, image: str, container_id: str, script: str, run_id: str
) -> str:
    """Run `script` in a helper sharing the container's network namespace; return its output.

    A signal waits until the helper is done and removed (`held`): cut short, it could still
    apply its rules after the revert had removed them."""
    with held():
        return _run_helper(client, image, container_id, script, run_id)


def _run_helper(
    client: docker.DockerClient, image: str, container_id: str, script: str, run_id: str
) -> str:
    name = f"drills-helper-{uuid.uuid4().hex[:12]}"
    helper = None
    try:
        client.images.get(image)  # never a pull in the middle of a drill
        helper = client.containers.run(
            image,
            [script],
            entrypoint=["/bin/sh", "-c"],
            name=name,
            network_mode=f"container:{container_id}",
            cap_add=["NET_ADMIN", "NET_RAW"],
            labels={HELPER_LABEL: run_id or "unknown"},
            detach=True,
        )
        result = helper.wait(timeout=HELPER_TIMEOUT_S)
        output = helper.logs(stdout=True, stderr=True).decode(errors="replace").strip()
        if result.get("StatusCode") != 0:
            tail = " | ".join(output.splitlines()[-2:]) or f"exit {result.get('StatusCode')}"
            raise EngineError(
                f"helper {image} failed in the namespace of {container_id[:12]}: {tail}"
            )
        return output
    except docker.errors.ImageNotFound:
        raise EngineError(
            f"helper image {image!r} is not on the engine: pull it, build one with "
            "`python -m drills.containers.local_image`, or set engine.helper_image"
        ) from None
    except docker.errors.DockerException as exc:
        raise engine_error(f"helper {image} in the namespace of {container_id[:12]}", exc) from exc
    except Exception as exc:  # requests' read timeout while waiting
        if isinstance(exc, EngineError):
            raise
        raise EngineError(f"helper {image}: {exc}") from exc
    finally:
        if helper is not None:
            with contextlib.suppress(docker.errors.DockerException):
                helper.remove(force=True)


def apply(
    client: docker.DockerClient, image: str, container_id: str, rules: list[list[str]], run_id: str
) -> None:
    run_helper(client, image, container_id, rules_script("-I", rules), run_id)


def remove(
    client: docker.DockerClient, image: str, container_id: str, rules: list[list[str]], run_id: str
) -> None:
    run_helper(client, image, container_id, rules_script("-D", rules), run_id)


def remove_helpers(client: docker.DockerClient, run_id: str | None = None) -> int:
    """Remove helper containers (of one run, or all); return how many."""
    label = f"{HELPER_LABEL}={run_id}" if run_id else HELPER_LABEL
    found = client.containers.list(all=True, filters={"label": label})
    for helper in found:
        with contextlib.suppress(docker.errors.NotFound):
            helper.remove(force=True)
    return len(found)
