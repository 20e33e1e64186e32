"""Files drills writes are never written through a symlink someone planted, modes are set on
the descriptor, and the state directory is private (issue 15, item 7)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from drills import files
from drills.errors import PathError
from drills.files import (
    chown_nofollow,
    copy_nofollow,
    open_lock,
    open_new_nofollow,
    open_nofollow,
    private_dir,
    write_atomically,
    write_new,
    write_nofollow,
)

VICTIM = "precious\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "victim"
    path.parent.mkdir()
    path.write_text(VICTIM)
    return path


def _names(*names: str) -> Iterator[str]:
    yield from names


def test_a_symlink_planted_at_the_temp_name_is_not_followed(
    tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "runs" / "r.json"
    target.parent.mkdir()
    names = _names("planted", "free")
    monkeypatch.setattr(files, "_temp_name", lambda p: p.with_name(f".{p.name}.{next(names)}"))
    (target.parent / ".r.json.planted").symlink_to(victim)
    write_atomically(target, "{}\n")
    assert victim.read_text() == VICTIM
    assert target.read_text() == "{}\n"
    assert (target.parent / ".r.json.planted").is_symlink()  # left alone, not removed either
    assert not (target.parent / ".r.json.free").exists()


def test_every_temp_name_taken_is_a_clear_error(
    tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_temp_name", lambda p: p.with_name(".planted"))
    (tmp_path / ".planted").symlink_to(victim)
    with pytest.raises(FileExistsError, match="no free temp file name"):
        write_atomically(tmp_path / "r.json", "{}\n")
    assert victim.read_text() == VICTIM
    assert not (tmp_path / "r.json").exists()


def test_a_symlink_at_the_destination_is_replaced_not_followed(
    tmp_path: Path, victim: Path
) -> None:
    (tmp_path / "metrics.prom").symlink_to(victim)
    write_atomically(tmp_path / "metrics.prom", "x 1\n")
    assert victim.read_text() == VICTIM
    assert not (tmp_path / "metrics.prom").is_symlink()
    assert (tmp_path / "metrics.prom").read_text() == "x 1\n"


def test_the_mode_is_set_on_the_descriptor_never_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def by_name(*args: object, **kwargs: object) -> None:
        raise AssertionError("chmod by name: a race with whoever swaps the name")

    monkeypatch.setattr(os, "chmod", by_name)
    write_atomically(tmp_path / "private", "secret\n", mode=0o600)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    umask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "public", "record\n")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644


def test_a_new_file_is_never_opened_through_what_is_there(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "link").symlink_to(victim)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("link", "dangling"):
        with pytest.raises(FileExistsError):
            open_new_nofollow(tmp_path / name)
        with pytest.raises(FileExistsError):
            write_new(tmp_path / name, "x")
    assert victim.read_text() == VICTIM
    assert not (tmp_path / "nowhere").exists()


def test_a_lock_file_is_not_opened_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / ".chain.lock").symlink_to(tmp_path / "created-elsewhere")
    with pytest.raises(OSError, match="symbolic links"):
        open_lock(tmp_path / ".chain.lock")
    assert not (tmp_path / "created-elsewhere").exists()


def test_the_state_directory_is_created_private(tmp_path: Path) -> None:
    umask = os.umask(0o002)
    try:
        state = private_dir(tmp_path / "state" / "drills")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_a_state_directory_others_can_write_is_tightened(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    os.chmod(tmp_path / "state", 0o777)
    private_dir(tmp_path / "state")
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_a_state_directory_that_is_a_symlink_or_a_file_is_refused(
    tmp_path: Path, victim: Path
) -> None:
    os.chmod(victim.parent, 0o755)
    (tmp_path / "state").symlink_to(victim.parent)
    with pytest.raises(PathError, match="state: a symbolic link"):
        private_dir(tmp_path / "state")
    assert stat.S_IMODE(victim.parent.stat().st_mode) == 0o755  # not chmod-ed through the link
    (tmp_path / "file").write_text("")
    with pytest.raises(PathError, match="file: unusable"):
        private_dir(tmp_path / "file")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_a_state_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o700)
    os.chown(tmp_path / "state", 65534, 65534)
    with pytest.raises(PathError, match="owned by uid 65534"):
        private_dir(tmp_path / "state")


@pytest.mark.parametrize("mode", ["wb", "ab", "r+b"])
def test_a_file_in_another_users_directory_is_not_opened_through_a_link(
    tmp_path: Path, victim: Path, mode: str
) -> None:
    planted = tmp_path / "postgresql.conf"
    planted.symlink_to(victim)
    with pytest.raises(OSError):
        open_nofollow(planted, mode)
    with pytest.raises(OSError):
        write_nofollow(planted, "listen_addresses = '*'\n")
    assert victim.read_text() == VICTIM


def test_open_nofollow_writes_appends_and_updates_a_plain_file(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    write_nofollow(path, "a\n")
    with open_nofollow(path, "ab") as out:
        out.write(b"b\n")
    with open_nofollow(path, "r+b") as out:
        out.write(b"A")
    assert path.read_text() == "A\nb\n"


def test_a_copy_reads_and_writes_no_link_and_keeps_the_mode(tmp_path: Path, victim: Path) -> None:
    source, dest = tmp_path / "pg_hba.conf", tmp_path / "copy"
    source.write_text("local all all peer\n")
    source.chmod(0o640)
    copy_nofollow(source, dest, (os.getuid(), os.getgid()))
    assert dest.read_text() == "local all all peer\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    leak = tmp_path / "leak"
    leak.symlink_to(victim)  # root would hand the victim's content to the link's owner
    with pytest.raises(OSError):
        copy_nofollow(leak, tmp_path / "leaked")
    assert not (tmp_path / "leaked").exists()
    trap = tmp_path / "trap"
    trap.symlink_to(victim)
    with pytest.raises(OSError):
        copy_nofollow(source, trap)
    assert victim.read_text() == VICTIM


def test_chown_of_a_planted_link_changes_the_link_not_its_target(
    tmp_path: Path, victim: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    link = tmp_path / "home"
    link.symlink_to(victim)
    chown_nofollow(link, 65534, 65534)
    assert victim.stat().st_uid == os.getuid()
    assert os.lstat(link).st_uid == 65534
