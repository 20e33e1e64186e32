"""Kind registries filled from entry points: lazy loading, and plugins that break or clash."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint, EntryPoints, PathDistribution
from pathlib import Path

import pytest

from drills import registry
from drills.registry import PluginError, Registry
from tests.conftest import REPO


def distribution(root: Path, name: str, group: str, entries: dict[str, str]) -> PathDistribution:
    """A installed-looking distribution: a dist-info directory with entry points."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    return PathDistribution(info)


def module(root: Path, name: str, text: str) -> None:
    (root / f"{name}.py").write_text(text)


class Kind:
    pass


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def use(monkeypatch: pytest.MonkeyPatch, *dists: PathDistribution) -> None:
    def entry_points(group: str) -> EntryPoints:
        found: list[EntryPoint] = [e for d in dists for e in d.entry_points if e.group == group]
        return EntryPoints(found)

    monkeypatch.setattr(registry, "entry_points", entry_points)


KINDS: Registry[Kind] = Registry("thing", group="test.things")


def test_kinds_load_the_first_time_they_are_looked_up(
    plugins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    things: Registry[Kind] = Registry("thing", group="test.things")
    monkeypatch.setattr(sys.modules[__name__], "KINDS", things)
    module(
        plugins,
        "home_things",
        "from tests.unit.drills.test_registry import KINDS, Kind\n"
        "@KINDS.register('one')\nclass One(Kind): pass\n",
    )
    module(
        plugins,
        "more_things",
        "from tests.unit.drills.test_registry import KINDS, Kind\n"
        "@KINDS.register('two')\nclass Two(Kind): pass\n",
    )
    use(
        monkeypatch,
        distribution(plugins, "drills", "test.things", {"one": "home_things"}),
        distribution(plugins, "more-things", "test.things", {"two": "more_things"}),
    )
    assert "home_things" not in sys.modules
    assert things.kinds() == ["one", "two"]
    assert things["two"].__name__ == "Two"
    assert things.origin("two") == (
        "entry point 'two = more_things' (group test.things) of distribution more-things 1.0"
    )


def test_a_plugin_that_cannot_be_imported_is_named(
    plugins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    things: Registry[Kind] = Registry("thing", group="test.things")
    module(plugins, "fine_things", "")
    module(plugins, "broken_things", "import no_such_module\n")
    use(
        monkeypatch,
        distribution(plugins, "drills", "test.things", {"fine": "fine_things"}),
        distribution(plugins, "broken-things", "test.things", {"broken": "broken_things"}),
    )
    expected = (
        "cannot load thing plugin: entry point 'broken = broken_things' (group test.things) of "
        "distribution broken-things 1.0: ModuleNotFoundError: No module named 'no_such_module'"
    )
    for _ in range(2):  # and it stays broken, rather than half loaded
        with pytest.raises(PluginError) as caught:
            things.kinds()
        assert str(caught.value) == expected


def test_a_plugin_may_not_take_a_kind_already_registered(
    plugins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    things: Registry[Kind] = Registry("thing", group="test.things")
    monkeypatch.setattr(sys.modules[__name__], "KINDS", things)
    text = "from tests.unit.drills.test_registry import KINDS, Kind\n@KINDS.register('one')\n"
    module(plugins, "first_things", text + "class One(Kind): pass\n")
    module(plugins, "other_things", text + "class Other(Kind): pass\n")
    use(
        monkeypatch,
        distribution(plugins, "other-things", "test.things", {"mine": "other_things"}),
        distribution(plugins, "drills", "test.things", {"one": "first_things"}),
    )
    with pytest.raises(PluginError) as caught:
        things.kinds()
    assert str(caught.value) == (
        "thing kind 'one' from entry point 'mine = other_things' (group test.things) of "
        "distribution other-things 1.0 is already registered by entry point "
        "'one = first_things' (group test.things) of distribution drills 1.0"
    )


def test_without_the_built_in_entry_points_the_error_says_to_reinstall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(monkeypatch)
    with pytest.raises(PluginError, match=r"declares no 'test.things' entry points; reinstall"):
        Registry[Kind]("thing", group="test.things").kinds()


def test_a_registry_without_a_group_holds_what_is_registered() -> None:
    things: Registry[Kind] = Registry("thing")
    things.register("one")(Kind)
    things.register("one")(Kind)  # the same class again: a module imported twice
    assert things.kinds() == ["one"] and "one" in things
    with pytest.raises(PluginError, match="thing kind 'one' from module"):
        things.register("one")(type("Other", (Kind,), {}))


def test_the_command_line_reports_a_broken_plugin_in_one_line(tmp_path: Path) -> None:
    distribution(tmp_path, "broken-probe", "drills.probes", {"broken": "broken_probe"})
    module(tmp_path, "broken_probe", "raise RuntimeError('boom')\n")
    result = subprocess.run(
        [sys.executable, "-m", "drills", "validate", "scenarios/db-failover.yaml"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "drills: cannot load probe plugin: entry point 'broken = broken_probe' (group "
        "drills.probes) of distribution broken-probe 1.0: RuntimeError: boom\n"
    )


REGISTRY_GROUPS = {
    "PROBES": "drills.probes",
    "STEPS": "drills.steps",
    "LABS": "drills.labs",
    "JOURNAL": "drills.journal",
}


def test_every_built_in_module_that_registers_kinds_is_declared_as_an_entry_point() -> None:
    """A module left out of pyproject.toml would silently lose its kinds."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    missing = []
    for path in sorted([*REPO.glob("drills/**/*.py"), *REPO.glob("probes/*.py")]):
        module_name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for registry_name in re.findall(r"^@(\w+)\.register\(", path.read_text(), re.M):
            group = REGISTRY_GROUPS[registry_name]
            if module_name == "drills.journal":
                continue  # the registry's own module: its `run` entry needs no declaring
            if module_name not in declared.get(group, {}).values():
                missing.append(f"{module_name} ({group})")
    assert missing == []


def test_the_architecture_doc_names_every_registry_and_group() -> None:
    doc = (REPO / "docs" / "architecture.md").read_text()
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    assert set(declared) == set(REGISTRY_GROUPS.values())
    for name, group in REGISTRY_GROUPS.items():
        assert f"| `{name}` |" in doc and f"`{group}`" in doc, name
