"""`corrupt`: data corruption or ransomware on a lab's PostgreSQL server.

`what: {relation: NAME}` overwrites the relation's files (found by `pg_relation_filepath`, after
a CHECKPOINT so that they hold its current pages) with random bytes; `what: data-directory`
encrypts every file under base/, global/ and pg_wal/ in place, XOR with a random key, and leaves
a ransom note. `archive: poisoned` encrypts the WAL segments in the lab's backup repository too
(those archived after the step `poisoned_from` ended, or all of them). Then the node is
restarted by killing it (no shutdown checkpoint writes clean pages back) and starting it; a
restart that fails is the expected outcome. Nothing is reverted: the damage is the incident,
allowed only on a lab's own servers, whose directory the lab removes.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import psycopg
from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from drills.abilities import Ability
from drills.errors import StepError
from drills.files import open_nofollow, write_nofollow
from drills.incidents.config_files import CONFIG_REVERT
from drills.incidents.server import (
    LOCAL_SERVER,
    LocalServer,
    chown_like,
    owner_of,
    restart_after_damage,
    restart_detail,
    wall_ns_of,
)
from drills.model import StrictModel
from drills.steps.base import STEPS, StepConfig, StepContext

if TYPE_CHECKING:
    from drills.labs.base import LabConfig

CHUNK = 1 << 20
ENCRYPTED_DIRECTORIES = ("base", "global", "pg_wal")
RANSOM_NOTE = "README_FILES_ENCRYPTED.txt"
NOTE_TEXT = (
    "All your database files have been encrypted (drills: a ransomware drill).\n"
    "Restore them from a clean backup; there is no key to pay for.\n"
)


def encrypt_in_place(path: Path, key: bytes) -> int:
    """XOR the file with `key` (repeated every CHUNK bytes), as ransomware would; its size."""
    whole = int.from_bytes(key, "little")
    size = 0
    with open_nofollow(path, "r+b") as file:
        while chunk := file.read(CHUNK):
            n = len(chunk)
            stream = whole if n == len(key) else int.from_bytes(key[:n], "little")
            file.seek(-n, os.SEEK_CUR)
            file.write((int.from_bytes(chunk, "little") ^ stream).to_bytes(n, "little"))
            size += n
    return size


def overwrite_random(path: Path) -> int:
    """Overwrite the file's bytes with random ones, keeping its size; its size."""
    size = path.stat().st_size
    with open_nofollow(path, "r+b") as file:
        done = 0
        while done < size:
            n = min(CHUNK, size - done)
            file.write(os.urandom(n))
            done += n
    return size


def damage(paths: list[Path], how: Any) -> tuple[int, int]:
    """Apply `how` to each file that still exists (a running server removes some); the number
    of files and bytes damaged."""
    files = size = 0
    for path in paths:
        try:
            size += how(path)
        except FileNotFoundError:
            continue
        files += 1
    return files, size


def data_files(datadir: Path) -> list[Path]:
    found = []
    for name in ENCRYPTED_DIRECTORIES:
        found += [
            p for p in sorted((datadir / name).rglob("*")) if p.is_file() and not p.is_symlink()
        ]
    return found


def relation_files(datadir: Path, filepath: str) -> list[Path]:
    """Every fork and segment of the relation whose main file is `filepath` (relative)."""
    main = datadir / filepath
    pattern = re.compile(rf"^{re.escape(main.name)}(_(fsm|vm|init))?(\.\d+)?$")
    return sorted(p for p in main.parent.iterdir() if pattern.match(p.name))


def relation_path(server: LocalServer, relation: str) -> str:
    """The relation's main file, relative to the data directory, once a CHECKPOINT has
    written its current pages there (so that overwriting them loses them)."""
    try:
        with psycopg.connect(server.dsn, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SELECT pg_relation_filepath(%s::regclass)", (relation,)).fetchone()
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:
        raise StepError(f"cannot find relation {relation} on {server.name}: {exc}") from exc
    if row is None or row[0] is None:
        raise StepError(f"relation {relation} on {server.name} has no data files")
    return str(row[0])


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


class RelationSpec(StrictModel):
    relation: str = Field(description="a table or index, e.g. drills_victim or public.orders")


def _what_form(value: Any) -> str:
    """Which form `what` is written in, so that a mistake gets the one message of that form."""
    return "relation" if isinstance(value, dict | RelationSpec) else "data-directory"


def _data_directory(value: Any) -> Any:
    if value != "data-directory":
        raise ValueError(f"what is `data-directory` or `{{relation: NAME}}`; got {value!r}")
    return value


What = Annotated[
    Annotated[Literal["data-directory"], BeforeValidator(_data_directory), Tag("data-directory")]
    | Annotated[RelationSpec, Tag("relation")],
    Discriminator(_what_form),
]


@STEPS.register("corrupt")
class Corrupt(StepConfig):
    kind: Literal["corrupt"]
    target: str
    what: What
    archive: Literal["intact", "poisoned"] = "intact"
    poisoned_from: str | None = Field(
        None, description="archive: poisoned: only WAL archived after this step ended"
    )
    restart: bool = True
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = LOCAL_SERVER

    @model_validator(mode="after")
    def _poisoned_from_needs_poison(self) -> Corrupt:
        if self.poisoned_from is not None and self.archive != "poisoned":
            raise ValueError("poisoned_from is for archive: poisoned")
        return self

    @property
    def step_refs(self) -> list[str]:
        return [self.poisoned_from] if self.poisoned_from else []

    def lab_problems(self, lab: LabConfig | None) -> list[tuple[tuple[str, ...], str]]:
        if self.archive == "poisoned" and getattr(lab, "backup", None) is None:
            return [(("archive",), "a poisoned archive needs the lab's backups: set lab.backup")]
        return []

    @property
    def relation(self) -> str | None:
        return self.what.relation if isinstance(self.what, RelationSpec) else None

    def describe(self) -> str:
        what = f"relation {self.relation}" if self.relation else "data directory"
        poisoned = ", archive poisoned" if self.archive == "poisoned" else ""
        return f"corrupt {self.target}: {what}{poisoned}"

    def run(self, ctx: StepContext) -> str:
        server = ctx.target_as(self.target, LOCAL_SERVER)
        archived = self._archive_files(ctx, server)
        incident: dict[str, Any] = {"kind": "corrupt", "node": server.name}
        if self.relation is not None:
            paths = relation_files(server.datadir, relation_path(server, self.relation))
            files, size = damage(paths, overwrite_random)
            incident |= {"what": "relation", "relation": self.relation}
            detail = f"relation {self.relation} of {server.name} overwritten"
        else:
            files, size = self._encrypt_data(server)
            # Nothing of this data directory can be put back as it was.
            ctx.reverts.drop(CONFIG_REVERT, server.name)
            incident["what"] = "data-directory"
            detail = f"data directory of {server.name} encrypted (note: {RANSOM_NOTE})"
        incident |= {"at_ns": time.monotonic_ns(), "files": files, "bytes": size}
        incident["archive"] = self.archive
        detail += f": {plural(files, 'file')}, {megabytes(size)}"
        if archived is not None:
            wal_files, wal_size = damage(archived, lambda p: encrypt_in_place(p, os.urandom(CHUNK)))
            incident |= {"archive_files": wal_files, "archive_bytes": wal_size}
            if self.poisoned_from is not None:
                incident["archive_poisoned_from_ns"] = ctx.named(self.poisoned_from).end_ns
            after = f" archived after {self.poisoned_from}" if self.poisoned_from else ""
            detail += f"; archive poisoned: {plural(wal_files, 'WAL file')}{after}"
        ctx.facts["incident"] = incident
        if not self.restart:
            return detail
        restarted, log_line = restart_after_damage(server, immediate=True)
        incident["restarted"] = restarted
        return f"{detail}; {restart_detail(restarted, log_line)}"

    def _archive_files(self, ctx: StepContext, server: LocalServer) -> list[Path] | None:
        """The archived WAL to encrypt (None: the archive stays intact), found before any
        damage so that a lab without a repository fails the step cleanly."""
        if self.archive != "poisoned":
            return None
        repository = getattr(server.lab, "repository", None)
        if repository is None:
            raise StepError(f"the lab of {server.name} has no backup repository to poison")
        found: list[Path] = list(repository.archive_wal_files())
        if self.poisoned_from is None:
            return found
        since = wall_ns_of(ctx.named(self.poisoned_from).end_ns)
        return [p for p in found if p.stat().st_mtime_ns > since]

    def _encrypt_data(self, server: LocalServer) -> tuple[int, int]:
        key = os.urandom(CHUNK)
        counts = damage(data_files(server.datadir), lambda p: encrypt_in_place(p, key))
        note = server.datadir / RANSOM_NOTE
        write_nofollow(note, NOTE_TEXT)
        chown_like(note, owner_of(server.datadir))
        return counts
