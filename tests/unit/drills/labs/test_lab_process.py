from pathlib import Path
from typing import Any

import pytest

from drills.errors import LabError
from drills.labs.lab_process import PostgresNode


def node(tmp_path: Path) -> PostgresNode:
    lab: Any = object()
    (tmp_path / "b").mkdir()
    return PostgresNode("b", lab, tmp_path / "b", 20001)


def test_the_server_on_the_port_is_the_one_started_in_its_directory(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "b")
    node(tmp_path)._check_own(str(tmp_path / "link"))


def test_another_server_that_took_the_port_first_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="b: port 20001 is answered by another server"):
        node(tmp_path)._check_own(str(tmp_path / "a"))
