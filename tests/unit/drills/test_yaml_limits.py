"""Hostile YAML (issue 15 item 4): alias bombs, deep nesting and large inputs are each refused
with one line naming the file and line, in well under a second, by every loader (scenarios,
schedules, drills.yaml) and by `drills validate` (exit 2).

The issue's bound, one second, is asserted on the processor time the load takes, which other
work on a shared machine does not inflate; the wall-clock bound is a generous five seconds.
The figures measured are in docs/security.md."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drills.config import load_config
from drills.errors import ScenarioError
from drills.scenario import load_scenario
from drills.schedule import load_schedule
from drills.yamlsource import MAX_BYTES, MAX_DEPTH, MAX_NODES
from tests.paths import REPO

CPU_BOUND_S = 1.0
WALL_BOUND_S = 5.0
LOADERS: list[Callable[[Path], Any]] = [load_scenario, load_schedule, load_config]
HOSTILE = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def billion_laughs(width: int = 9, levels: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def refused(loader: Callable[[Path], Any], path: Path, raw: bytes) -> str:
    """The one problem `loader` reports for `raw`, reported within the bounds."""
    path.write_bytes(raw)
    wall, cpu = time.monotonic(), time.process_time()
    with pytest.raises(ScenarioError) as caught:
        loader(path)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    assert len(caught.value.problems) == 1, caught.value.problems
    text = str(caught.value.problems[0])
    assert "\n" not in text and text.startswith(f"{path}:"), text
    assert cpu < CPU_BOUND_S, f"{loader.__name__} took {cpu:.2f}s of processor time: {text}"
    assert wall < WALL_BOUND_S, f"{loader.__name__} took {wall:.2f}s: {text}"
    return text


def refused_by_all(tmp_path: Path, raw: bytes, why: str) -> None:
    for loader in LOADERS:
        text = refused(loader, tmp_path / f"{loader.__name__}.yaml", raw)
        assert why in text, text


def test_a_600_byte_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    bomb = billion_laughs().encode()
    assert len(bomb) <= 600
    refused_by_all(tmp_path, bomb, f"more than {MAX_NODES} keys and values")
    text = refused(load_scenario, tmp_path / "bomb.yaml", bomb)
    assert text.startswith(f"{tmp_path / 'bomb.yaml'}:"), text  # names the line of the alias
    assert text.split(":")[1].isdigit(), text


def test_a_20_mb_scalar_is_refused_without_being_parsed(tmp_path: Path) -> None:
    raw = b"name: " + b"x" * 20_000_000 + b"\n"
    refused_by_all(tmp_path, raw, f"larger than the limit of {MAX_BYTES} bytes")


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    refused_by_all(tmp_path, b"a: &a [1, *a]\n", "an alias refers to itself")


@HOSTILE
@given(
    width=st.integers(min_value=2, max_value=12),
    levels=st.integers(min_value=6, max_value=30),
    style=st.sampled_from(["flow", "block", "mapping"]),
)
def test_alias_bombs_are_refused_in_under_a_second(
    tmp_path: Path, width: int, levels: int, style: str
) -> None:
    if width**levels <= MAX_NODES:
        levels = 14  # big enough whatever the width
    lines = ["a0: &a0 " + "[" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        ref = f"*a{level - 1}"
        if style == "flow":
            body = "[" + ", ".join([ref] * width) + "]"
            lines.append(f"a{level}: &a{level} {body}")
        elif style == "block":
            lines.append(f"a{level}: &a{level}")
            lines += [f"  - {ref}"] * width
        else:
            lines.append(f"a{level}: &a{level}")
            lines += [f"  k{i}: {ref}" for i in range(width)]
    refused_by_all(tmp_path, ("\n".join(lines) + "\n").encode(), "keys and values")


@HOSTILE
@given(
    depth=st.integers(min_value=MAX_DEPTH + 1, max_value=200_000),
    opener=st.sampled_from(["[", "{a: ", "- "]),
)
def test_deep_nesting_is_refused_in_under_a_second(tmp_path: Path, depth: int, opener: str) -> None:
    if opener == "- ":
        depth = min(depth, 900)  # block style: indentation makes the file grow as depth²
        text = "".join(" " * (2 * i) + "-\n" for i in range(depth)) + " " * (2 * depth) + "x\n"
    else:
        text = opener * depth
    raw = text.encode()
    if len(raw) > MAX_BYTES:
        return  # the size bound, tested on its own
    refused_by_all(tmp_path, raw, f"nested more than {MAX_DEPTH} levels deep")


@HOSTILE
@given(
    size=st.integers(min_value=MAX_BYTES + 1, max_value=30_000_000),
    unit=st.sampled_from([b"x", b"- a\n", b"#comment\n", b"\xc3\xa9", b"[1, "]),
)
def test_inputs_over_the_size_limit_are_refused_in_under_a_second(
    tmp_path: Path, size: int, unit: bytes
) -> None:
    raw = b"name: " + unit * (size // len(unit) + 1)
    refused_by_all(tmp_path, raw, f"larger than the limit of {MAX_BYTES} bytes")


@settings(HOSTILE, max_examples=5)
@given(count=st.integers(min_value=MAX_NODES + 1, max_value=250_000))
def test_many_values_within_the_size_limit_are_refused_in_under_a_second(
    tmp_path: Path, count: int
) -> None:
    raw = ("items:\n" + "- 1\n" * count).encode()
    if len(raw) > MAX_BYTES:
        raw = raw[: MAX_BYTES - 1] + b"\n"
    refused_by_all(tmp_path, raw, f"more than {MAX_NODES} keys and values")


def test_the_scenario_size_limit_is_set_in_drills_yaml(tmp_path: Path) -> None:
    scenario = REPO / "scenarios" / "primary-hang.yaml"
    size = len(scenario.read_bytes())
    config = tmp_path / "drills.yaml"
    config.write_text(f"version: 1\nlimits: {{scenario_bytes: {size - 1}}}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario, config=config)
    assert f"larger than the limit of {size - 1} bytes (limits.scenario_bytes" in str(caught.value)
    config.write_text(f"version: 1\nlimits: {{scenario_bytes: {size}}}\n")
    assert load_scenario(scenario, config=config).scenario.name == "primary-hang"


def test_the_size_limit_names_the_line_where_it_is_crossed(tmp_path: Path) -> None:
    config = tmp_path / "drills.yaml"
    config.write_text("limits: {scenario_bytes: 100}\n")
    path = tmp_path / "long.yaml"
    path.write_text("".join(f"# line {n:02}\n" for n in range(1, 40)))  # 10 bytes a line
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, config=config)
    # Bytes 1-100 are lines 1-10: the 101st, over the limit, starts line 11.
    assert str(caught.value).startswith(f"{path}:11: larger than the limit of 100 bytes")


def test_drills_validate_exits_2_with_one_line_for_a_bomb(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "drills", "validate", str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # no drills.yaml here
    )
    # Before the bound this ran for minutes; now the interpreter's start-up dominates.
    assert time.monotonic() - started < 20
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{bomb}:"), result.stderr
    assert "Traceback" not in result.stderr
