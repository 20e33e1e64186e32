"""Which Docker engine to talk to, and one client per drill.

The engine comes from the scenario's `engine:` (`host` or `context`), else from the
environment as the docker CLI reads it: `DOCKER_HOST` (unix://, tcp://, ssh://user@host),
`DOCKER_CONTEXT`, or the current context of `~/.docker/config.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import docker
import docker.errors
from docker.tls import TLSConfig
from pydantic import Field

from drills.errors import EngineError
from drills.model import StrictModel

DEFAULT_HELPER_IMAGE = "nicolaka/netshoot:latest"
HELPER_IMAGE_ENV = "DRILLS_HELPER_IMAGE"


class EngineSpec(StrictModel):
    host: str | None = Field(
        None,
        description="engine address, as DOCKER_HOST: unix://, tcp://HOST:PORT, ssh://USER@HOST",
    )
    context: str | None = Field(None, description="a docker context name (docker context ls)")
    helper_image: str | None = Field(
        None,
        description="image with iptables for partitions, run in the target's network namespace "
        f"(default: ${HELPER_IMAGE_ENV}, else {DEFAULT_HELPER_IMAGE})",
    )
    timeout: float = Field(30.0, gt=0, description="seconds to wait for each engine request")

    @classmethod
    def default(cls) -> EngineSpec:
        """The engine of the environment."""
        return cls.model_validate({})

    def helper(self) -> str:
        return self.helper_image or os.environ.get(HELPER_IMAGE_ENV) or DEFAULT_HELPER_IMAGE


def _config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _current_context() -> str | None:
    if os.environ.get("DOCKER_CONTEXT"):
        return os.environ["DOCKER_CONTEXT"]
    config_dir = _config_dir()
    try:
        current = json.loads((config_dir / "config.json").read_text()).get("currentContext")
    except (OSError, ValueError, AttributeError):
        return None
    return current if isinstance(current, str) else None


def address(spec: EngineSpec) -> tuple[str | None, object]:
    """The engine's address (None: the local default socket) and its TLS settings."""
    if spec.host:
        return spec.host, None
    name = spec.context or (None if os.environ.get("DOCKER_HOST") else _current_context())
    if name and name != "default":
        return _context(name)
    return os.environ.get("DOCKER_HOST"), None


def _context(name: str) -> tuple[str | None, object]:
    """A docker context's engine address and TLS settings, read where the docker CLI keeps
    them ($DOCKER_CONFIG or ~/.docker, contexts/meta/<sha256 of the name>/meta.json)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = _config_dir() / "contexts" / "meta" / digest / "meta.json"
    try:
        endpoint = json.loads(meta.read_text())["Endpoints"]["docker"]
    except (OSError, ValueError, KeyError, TypeError):
        raise EngineError(f"no docker context named {name!r} (see `docker context ls`)") from None
    tls_dir = _config_dir() / "contexts" / "tls" / digest / "docker"
    tls: object = None
    if tls_dir.is_dir():
        files = {p.stem: str(p) for p in tls_dir.glob("*.pem")}
        tls = TLSConfig(
            client_cert=(files["cert"], files["key"])
            if "cert" in files and "key" in files
            else None,
            ca_cert=files.get("ca"),
            verify=not endpoint.get("SkipTLSVerify", False),
        )
    return endpoint.get("Host"), tls


DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def resolved_engine(spec: EngineSpec) -> dict[str, object]:
    """The spec with its address pinned, for a journal read back in another environment."""
    pinned = spec.model_dump(exclude_none=True)
    if not spec.context:
        host, _ = address(spec)
        pinned["host"] = host or DEFAULT_SOCKET
    return pinned


def connect(spec: EngineSpec) -> docker.DockerClient:
    """A client for the engine, checked with a ping; EngineError saying where and why if not."""
    host, tls = address(spec)
    where = host or "the local engine (unix:///var/run/docker.sock)"
    try:
        if host and host != os.environ.get("DOCKER_HOST"):
            client = docker.DockerClient(
                base_url=host,
                tls=tls or False,  # type: ignore[arg-type]
                timeout=int(spec.timeout),
                use_ssh_client=host.startswith("ssh://"),
            )
        else:  # the environment's engine, with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
            client = docker.from_env(
                timeout=int(spec.timeout), use_ssh_client=bool(host and host.startswith("ssh://"))
            )
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot reach the Docker engine at {where}: {_reason(exc)}") from exc
    return client


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "FileNotFoundError" in text or "No such file" in text:
        return "no engine socket (is dockerd running? `make docker` installs and starts one here)"
    if "Connection refused" in text:
        return "connection refused (is dockerd running and listening there?)"
    return text[:300]


def engine_error(what: str, exc: Exception) -> EngineError:
    """A one-line error for a failed engine request."""
    if isinstance(exc, docker.errors.APIError):
        detail = exc.explanation or str(exc)
        text = detail.decode() if isinstance(detail, bytes) else str(detail)
    else:
        text = str(exc)
    return EngineError(f"{what}: {' '.join(text.split())[:300]}")
