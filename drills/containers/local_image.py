"""Build small images from this host's own binaries, for machines that reach no image registry.

`python -m drills.containers.local_image` builds two images with `docker import`:

- `drills/postgres:local`: the host's PostgreSQL server binaries, their libraries, `sh` and a few
  tools; used by the `docker-postgres-pair` lab instead of the official `postgres` image;
- `drills/netutils:local`: `iptables` and `sh`; the helper that applies partitions inside a
  container's network namespace.

Each image holds only the files named here and the shared libraries they load (found with
`ldd`), laid out as on a merged-/usr Debian system; nothing is bind-mounted from the host, so
the images work on a remote engine of the same architecture too.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

import docker
import docker.errors

from drills.containers.engine import EngineSpec, connect

POSTGRES_IMAGE = "drills/postgres:local"
NETUTILS_IMAGE = "drills/netutils:local"
TOOLS = ("sh", "sleep", "cat", "ls", "rm", "mkdir", "id", "env", "kill", "ps")
MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}
LABEL = "org.drills.local-image"


class Tree:
    """Host files to put in an image, each at its real path, symlinks kept."""

    def __init__(self) -> None:
        self.files: set[str] = set()

    def add(self, path: str) -> None:
        directory = os.path.realpath(os.path.dirname(path))
        here = os.path.join(directory, os.path.basename(path))
        if here in self.files or not os.path.lexists(here) or _skipped(here):
            return
        self.files.add(here)
        if os.path.islink(here):
            self.add(os.path.join(directory, os.readlink(here)))
        elif os.path.isdir(here):
            for child in os.listdir(here):
                self.add(os.path.join(here, child))
        elif _is_elf(here):
            for library in _libraries(here):
                self.add(library)

    def add_all(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.add(path)


def _skipped(path: str) -> bool:
    # PostgreSQL's JIT pulls in LLVM (about 200 MB) and is off unless asked for.
    name = os.path.basename(path)
    return name.startswith("llvmjit") or name == "bitcode"


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"\x7fELF"
    except OSError:
        return False


def _libraries(path: str) -> list[str]:
    result = subprocess.run(["ldd", path], capture_output=True, text=True)
    found = []
    for line in result.stdout.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1:
            candidate = parts[parts.index("=>") + 1]
        elif parts and parts[0].startswith("/"):
            candidate = parts[0]
        else:
            continue
        if candidate.startswith("/"):
            found.append(candidate)
    return found


def _which(name: str) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise SystemExit(f"local_image: {name} not found on this host")
    return path


def _text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def root_filesystem(tree: Tree) -> bytes:
    """A tar of the tree plus the skeleton a container needs (users, /tmp, merged /usr)."""
    import pwd

    postgres = pwd.getpwnam("postgres") if _has_user("postgres") else None
    uid, gid = (postgres.pw_uid, postgres.pw_gid) if postgres else (999, 999)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("usr", "etc", "proc", "sys", "dev", "run", "var", "home", "root"):
            _dir(tar, name)
        _dir(tar, "tmp", 0o1777)
        _dir(tar, "var/lib")
        for link, target in MERGED.items():
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        _text(
            tar,
            "etc/passwd",
            f"root:x:0:0:root:/root:/bin/sh\npostgres:x:{uid}:{gid}::/var/lib/postgresql:/bin/sh\n",
        )
        _text(tar, "etc/group", f"root:x:0:\npostgres:x:{gid}:\n")
        _text(tar, "etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
        parents = {str(p) for f in tree.files for p in Path(f).parents if str(p) != "/"}
        for path in sorted(parents | tree.files):
            name = path.lstrip("/")
            for link, target in MERGED.items():  # /lib/x -> usr/lib/x, as on the host
                if name == link or name.startswith(link + "/"):
                    name = target + name[len(link) :]
            if name in MERGED or name in tar.getnames():
                continue
            tar.add(path, arcname=name, recursive=False)
    return buffer.getvalue()


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def postgres_tree() -> Tree:
    versions = sorted(glob.glob("/usr/lib/postgresql/*"), key=lambda p: int(Path(p).name))
    if not versions:
        raise SystemExit(
            "local_image: no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)"
        )
    version = Path(versions[-1]).name
    tree = Tree()
    tree.add_all([versions[-1], f"/usr/share/postgresql/{version}", "/usr/share/zoneinfo"])
    tree.add_all(_which(tool) for tool in TOOLS)
    return tree


def netutils_tree() -> Tree:
    tree = Tree()
    tree.add_all(_which(tool) for tool in (*TOOLS, "iptables", "ip"))
    tree.add_all(glob.glob("/usr/lib/x86_64-linux-gnu/xtables") + glob.glob("/usr/lib/*/xtables"))
    return tree


def postgres_path() -> str:
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    return f"{versions[-1]}:/usr/sbin:/usr/bin" if versions else "/usr/sbin:/usr/bin"


def build(client: docker.DockerClient, tag: str, tree: Tree, path: str) -> str:
    """Import the tree as image `tag`; return the image id."""
    repository, _, version = tag.partition(":")
    changes = [f"ENV PATH={path}", f"LABEL {LABEL}=true", 'CMD ["/bin/sh"]']
    client.api.import_image_from_data(
        root_filesystem(tree), repository=repository, tag=version or "latest", changes=changes
    )
    return str(client.images.get(tag).id)


def ensure(client: docker.DockerClient, rebuild: bool = False) -> dict[str, str]:
    """Build whichever local image is missing (or all, with `rebuild`); return tag -> id."""
    wanted = {
        POSTGRES_IMAGE: (postgres_tree, postgres_path()),
        NETUTILS_IMAGE: (netutils_tree, "/usr/sbin:/usr/bin"),
    }
    ids: dict[str, str] = {}
    for tag, (make_tree, path) in wanted.items():
        if not rebuild:
            try:
                ids[tag] = str(client.images.get(tag).id)
                continue
            except docker.errors.ImageNotFound:
                pass
        print(f"drills: building image {tag} from this host's binaries", file=sys.stderr)
        ids[tag] = build(client, tag, make_tree(), path)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m drills.containers.local_image",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--rebuild", action="store_true", help="build even if the image exists")
    args = parser.parse_args(argv)
    client = connect(EngineSpec.default())
    for tag, image_id in ensure(client, args.rebuild).items():
        print(f"{tag} {image_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
