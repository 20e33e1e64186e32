from pathlib import Path

from drills.backup.pgbackrest import Repository, Server, own_seconds


def test_own_seconds_from_the_command_end_line() -> None:
    line = "P00   INFO: restore command end: completed successfully (1234ms)"
    assert own_seconds(line) == 1.234
    assert own_seconds("P00   INFO: backup command begin 2.45: --type=full") is None


def test_archive_command_pushes_the_servers_own_wal_and_names_no_port(tmp_path: Path) -> None:
    repository = Repository(tmp_path, None)
    command = repository.archive_command(Server(tmp_path / "b", 5433))
    assert f"--config={tmp_path}/pgbackrest/pgbackrest.conf" in command
    assert f"--pg1-path={tmp_path}/b" in command
    assert "port" not in command
    assert command.endswith("archive-push %p")


def test_every_path_pgbackrest_writes_is_inside_the_lab(tmp_path: Path) -> None:
    repository = Repository(tmp_path, None)
    repository.write_config(Server(tmp_path / "a", 5432))
    paths = [
        line.split("=", 1)[1]
        for line in repository.config.read_text().splitlines()
        if line.split("=")[0].endswith("-path")
    ]
    assert len(paths) == 6  # repo, log, lock, spool, pg1, socket
    assert all(p.startswith(str(tmp_path)) for p in paths)


def test_archive_command_survives_a_lab_path_with_spaces_and_quotes(tmp_path: Path) -> None:
    import shlex

    root = tmp_path / "it's a lab"
    command = Repository(root, None).archive_command(Server(root / "a", 5432))
    words = shlex.split(command)
    assert words[1] == f"--config={root}/pgbackrest/pgbackrest.conf"
    assert words[-2:] == ["archive-push", "%p"]
    setting = Repository(root, None).archive_setting(Server(root / "a", 5432))
    assert setting.startswith("'") and setting.endswith("'")
    assert "''" in setting  # the quote doubled for postgresql.conf
