"""drills.yaml: the allow-list that keeps faults away from containers nobody listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.config import allowed, config_path, load_config
from drills.errors import ScenarioError


def test_entries_match_by_name_glob_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "drills.yaml"
    path.write_text(
        "containers:\n"
        "  allow:\n"
        "    - name: shop-staging-*\n"
        "    - labels: {com.docker.compose.project: shop-staging}\n"
        "    - name: db-?\n"
        "      labels: {tier: test}\n"
    )
    config = load_config(path)
    assert allowed(config, "shop-staging-db-1", {}) is not None
    assert allowed(config, "db-1", {"com.docker.compose.project": "shop-staging"}) is not None
    assert allowed(config, "db-1", {"tier": "test"}) is not None
    assert allowed(config, "db-1", {"tier": "prod"}) is None  # both must hold
    assert allowed(config, "shop-prod-db-1", {"com.docker.compose.project": "shop"}) is None


def test_no_configuration_allows_nothing() -> None:
    assert allowed(load_config(None), "anything", {"a": "b"}) is None


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRILLS_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path(None) is None
    user = tmp_path / "xdg" / "drills" / "drills.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("containers: {allow: []}\n")
    assert config_path(None) == user
    (tmp_path / "drills.yaml").write_text("containers: {allow: []}\n")
    assert config_path(None) == Path("drills.yaml")
    monkeypatch.setenv("DRILLS_CONFIG", "/etc/drills.yaml")
    assert config_path(None) == Path("/etc/drills.yaml")
    assert config_path(Path("x.yaml")) == Path("x.yaml")


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("containers:\n  allow:\n    - {}\n", 3, "containers.allow.0", "gives a name (glob)"),
        ("containers:\n  alow: []\n", 2, "containers.alow", "unknown key 'alow'"),
        ("containers:\n  allow:\n    - name: [a]\n", 3, "containers.allow.0.name", "string"),
        ("- a\n", 1, "", "drills.yaml is a mapping"),
    ],
)
def test_bad_configuration_is_one_located_line(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    path = tmp_path / "drills.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.line == line and problem.key == key and message in problem.message, problem
