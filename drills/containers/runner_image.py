"""Build the runner image from this host, for machines that reach no image registry.

`python -m drills.containers.runner_image` makes `drills/runner:local` with `docker import`, the
way `make docker` makes drills/postgres:local: this host's Python interpreter and its standard
library (without its tests), drills and its dependencies installed by pip into /opt/drills/site,
the shipped scenarios in /opt/drills/scenarios (the working directory), `drills` on the PATH,
and the shared libraries all of it loads. The `Dockerfile` at the repository's root builds the
same layout from `python:3.11-slim-bookworm` where a registry is reachable.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

import docker

from drills.containers.engine import EngineSpec, connect
from drills.containers.local_image import LABEL, Tree, _is_elf, _libraries, _which, root_filesystem

RUNNER_IMAGE = "drills/runner:local"
HOME = "/opt/drills"
REPO = Path(__file__).resolve().parents[2]
# Parts of the standard library a runner never imports.
UNUSED = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages"}


def install(site: Path) -> None:
    """drills and its dependencies (not the development ones) into `site`, as pip installs."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(site), str(REPO)]
    subprocess.run(command, check=True)


def runner_tree(site: Path) -> Tree:
    tree = Tree()
    tree.add(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    tree.add_all(str(child) for child in stdlib.iterdir() if child.name not in UNUSED)
    tree.add_all(_which(tool) for tool in ("sh", "env", "cat", "ls", "ssh", "psql"))
    for path in site.rglob("*"):
        if path.is_file() and _is_elf(str(path)):  # the wheels' modules: the system's libraries
            tree.add_all(lib for lib in _libraries(str(path)) if not lib.startswith(str(site)))
    return tree


def _wrapper(python: str) -> str:
    return f'#!/bin/sh\nexec {python} -m drills "$@"\n'


def image_tar(site: Path) -> bytes:
    """The root filesystem: the tree, then /opt/drills (site, scenarios) and `drills`."""
    buffer = io.BytesIO(root_filesystem(runner_tree(site)))
    with tarfile.open(fileobj=buffer, mode="a") as tar:
        tar.add(site, arcname=f"{HOME.lstrip('/')}/site")
        tar.add(REPO / "scenarios", arcname=f"{HOME.lstrip('/')}/scenarios")
        script = _wrapper(os.path.realpath(sys.executable)).encode()
        info = tarfile.TarInfo("usr/local/bin/drills")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


def build(client: docker.DockerClient, tag: str = RUNNER_IMAGE) -> str:
    with tempfile.TemporaryDirectory(prefix="drills-runner-") as work:
        site = Path(work) / "site"
        install(site)
        data = image_tar(site)
    repository, _, version = tag.partition(":")
    changes = [
        "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin",
        f"ENV PYTHONPATH={HOME}/site",
        "ENV DRILLS_STATE_DIR=/var/lib/drills",
        f"WORKDIR {HOME}",
        f"LABEL {LABEL}=true",
        'CMD ["drills", "--help"]',
    ]
    client.api.import_image_from_data(
        data, repository=repository, tag=version or "latest", changes=changes
    )
    return str(client.images.get(tag).id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m drills.containers.runner_image",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--tag", default=RUNNER_IMAGE, help=f"(default: {RUNNER_IMAGE})")
    args = parser.parse_args(argv)
    print(f"{args.tag} {build(connect(EngineSpec.default()), args.tag)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
