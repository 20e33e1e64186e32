"""Backups in the `patroni` lab, from its configuration alone: what each member's Patroni
configuration gets, and which backup and restore steps validation accepts (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.backup.lab import IDENT_MAP, BackupConfig
from drills.backup.pgbackrest import Repository
from drills.errors import ScenarioError, TargetError
from drills.patroni.lab_backup import member_backup
from drills.patroni.lab_config import PatroniLabConfig
from drills.patroni.lab_files import LabSecrets, MemberPlan, patroni_config
from drills.patroni.lab_nodes import PatroniMember
from drills.scenario import load_scenario

BIN = Path("/usr/lib/postgresql/15/bin")


def made(tmp_path: Path, name: str, **backup: object) -> dict[str, object]:
    """Member `name`'s Patroni configuration in a lab with `backup:`."""
    cfg = PatroniLabConfig.model_validate({"kind": "patroni", "backup": backup})
    assert cfg.backup is not None
    plan = MemberPlan(name, name[0], tmp_path / name, 5432, 8008, 6001, 6002)
    repository = Repository(tmp_path, None)
    settings = member_backup(cfg.backup, repository, plan.server, plan.home, "postgres")
    return patroni_config(plan, cfg, LabSecrets(), "drills-x", BIN, settings)


def test_every_member_archives_its_own_wal_into_the_labs_repository(tmp_path: Path) -> None:
    a1, b1 = made(tmp_path, "a1", archive_timeout="5s"), made(tmp_path, "b1")
    for name, config in (("a1", a1), ("b1", b1)):
        local = config["postgresql"]["parameters"]  # type: ignore[index]
        command = local["archive_command"]
        assert f"--pg1-path={tmp_path / name / 'data'} " in command
        assert f"--config={tmp_path / 'pgbackrest' / 'pgbackrest.conf'}" in command
        assert command.endswith("archive-push %p") and "--pg1-port" not in command
        # The member's own socket directory first (Patroni's), then the repository's.
        assert local["unix_socket_directories"] == f"{tmp_path / name},{tmp_path}"
    cluster = a1["bootstrap"]["dcs"]["postgresql"]["parameters"]  # type: ignore[index]
    assert cluster["archive_mode"] == "on" and cluster["archive_timeout"] == "5s"
    assert cluster["track_commit_timestamp"] == "on" and cluster["log_timezone"] == "UTC"
    assert "archive_command" not in cluster


def test_only_the_members_os_user_gets_in_without_a_password(tmp_path: Path) -> None:
    config = made(tmp_path, "a1")
    postgresql = config["postgresql"]
    hba = postgresql["pg_hba"]  # type: ignore[index]
    assert hba[0] == f"local all postgres peer map={IDENT_MAP}"
    assert all(line.endswith("scram-sha-256") for line in hba[1:])
    assert postgresql["pg_ident"] == [f"{IDENT_MAP} postgres postgres"]  # type: ignore[index]


def test_without_backup_nothing_archives(tmp_path: Path) -> None:
    cfg = PatroniLabConfig.model_validate({"kind": "patroni"})
    plan = MemberPlan("a1", "a", tmp_path / "a1", 5432, 8008, 6001, 6002)
    config = patroni_config(plan, cfg, LabSecrets(), "drills-x", BIN)
    assert "archive_command" not in config["postgresql"]["parameters"]
    assert "pg_ident" not in config["postgresql"]
    assert "archive_mode" not in config["bootstrap"]["dcs"]["postgresql"]["parameters"]


def test_a_member_of_a_lab_without_backup_has_no_backups(tmp_path: Path) -> None:
    plan = MemberPlan("a1", "a", tmp_path / "a1", 5432, 8008, 6001, 6002)
    member = PatroniMember(object(), plan, "/usr/bin/patroni", "host=x")  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="a1: the lab has no `backup:` setting"):
        member.backups()
    assert member.server().datadir == tmp_path / "a1" / "data"
    assert BackupConfig().archive_timeout == 60.0


def scenario(tmp_path: Path, step: str, backup: bool = True) -> Path:
    lab = "{kind: patroni, backup: {size: 10MB}}" if backup else "{kind: patroni}"
    path = tmp_path / "s.yaml"
    path.write_text(
        f"version: 1\nname: s\nlab: {lab}\n"
        "targets: {leader: {lab: leader}, a1: {lab: a1}, lb: {lab: lb}}\n"
        "probes: {writes: {kind: postgres-write, dsn: '${lab.dsn}', interval: 50ms}}\n"
        "service_probe: writes\n"
        f"steps:\n  - {step}\n"
    )
    return path


@pytest.mark.parametrize("step", ["backup: leader", "backup: {target: a1, type: incr}"])
def test_a_member_or_the_leader_can_be_backed_up(tmp_path: Path, step: str) -> None:
    loaded = load_scenario(scenario(tmp_path, step))
    assert loaded.scenario.steps[0].kind == "backup"


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return [str(p) for p in caught.value.problems]


def test_a_backup_without_the_labs_backup_setting_is_refused(tmp_path: Path) -> None:
    found = problems(scenario(tmp_path, "backup: leader", backup=False))
    assert len(found) == 1 and "backup needs a lab with a `backup:` setting" in found[0]


def test_the_load_balancer_cannot_be_backed_up(tmp_path: Path) -> None:
    found = problems(scenario(tmp_path, "backup: lb"))
    assert len(found) == 1
    assert "target 'lb' cannot be used with backup: it has no backups" in found[0]


@pytest.mark.parametrize(
    "step", ["restore: a1", "restore: leader", "restore-config: {target: a1, source: backup}"]
)
def test_a_restore_on_a_member_is_refused_in_one_line(tmp_path: Path, step: str) -> None:
    found = problems(scenario(tmp_path, step))
    kind = step.split(":")[0]
    assert len(found) == 1, found
    assert f"{kind} on a Patroni member is not supported yet: Patroni manages the data " in found[0]
