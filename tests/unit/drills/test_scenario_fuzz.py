"""Property-based fuzzing of the YAML loaders: `load_scenario` and `load_schedule`.

For any input (arbitrary text, arbitrary bytes, random YAML documents, mutations of the shipped
scenarios) a loader either returns or raises ScenarioError, never anything else; and every
problem it reports is one line that starts with the file path, with a line number that is None
or within 1..(number of lines + 1). `drills validate` on such files exits 0 or 2, without a
traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from drills.errors import ScenarioError
from drills.scenario import load_scenario
from drills.schedule import load_schedule
from tests.paths import REPO

ROOT = REPO
SHIPPED = {p.name: p.read_text(encoding="utf-8") for p in sorted(ROOT.glob("scenarios/*.yaml"))}
LOADERS: list[Callable[[Path], Any]] = [load_scenario, load_schedule]

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the repository; failures are pinned with @example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CLI = settings(FUZZ, max_examples=12)

# Keys the loaders know, so that random documents reach past the top level.
KEYS = [
    "version", "name", "description", "objectives", "rto", "rpo", "availability", "lab",
    "kind", "targets", "network", "probes", "service_probe", "write_probe", "stable", "settle",
    "steps", "wait", "kill", "promote", "wait-until", "probe", "timeout", "dsn", "host", "port",
    "interval", "pid_file", "start", "stop_signal", "required", "scenario", "month", "cadence",
    "file", "postgres-pair", "postgres-read", "postgres-write", "tcp", "site-a", "reads",
]  # fmt: skip

# --- the property -------------------------------------------------------------------------


def n_lines(raw: bytes) -> int:
    try:
        return len(raw.decode("utf-8").splitlines())
    except UnicodeDecodeError:
        return len(raw.splitlines())


def check_loader(loader: Callable[[Path], Any], path: Path, raw: bytes) -> None:
    path.write_bytes(raw)
    try:
        loader(path)
    except ScenarioError as exc:  # anything else propagates and fails the test
        assert exc.problems, "a ScenarioError without problems"
        last = n_lines(raw) + 1
        for problem in exc.problems:
            text = str(problem)
            assert "\n" not in text, f"problem renders on several lines: {text!r}"
            assert "\r" not in text, f"problem renders on several lines: {text!r}"
            assert problem.file == str(path), text
            assert text.startswith(str(path)), text
            assert problem.line is None or 1 <= problem.line <= last, (problem.line, last, text)


def check_both(tmp_path: Path, raw: bytes) -> None:
    for loader in LOADERS:
        check_loader(loader, tmp_path / f"fuzz-{loader.__name__}.yaml", raw)


# --- strategies ---------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(KEYS),
    st.sampled_from(["5s", "250ms", "30m", "99.99%", "101%", "${lab.dsn}", "${env:HOME}", "${"]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=10), st.integers(), st.none())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)
documents = st.one_of(st.dictionaries(keys, values, max_size=8), values)

YAML_CHARS = [*"-:?[]{},#&*!|>'\"%@`\t \n\\~.$}", "!!int ", "!!bool ", "&a ", "*a", "${"]
yaml_chars = st.lists(st.sampled_from(YAML_CHARS), max_size=6).map("".join)
# Text without the control characters PyYAML refuses outright, so that it reaches the parser.
printable = st.characters(blacklist_categories=("Cc", "Cs"), whitelist_characters="\t\n\r")
yaml_text = st.lists(
    st.one_of(
        st.sampled_from([*YAML_CHARS, *KEYS, "\n", "\n  ", ": ", "- "]),
        st.text(printable, max_size=3),
    )
).map("".join)

# Scalars as they would be typed into a YAML file (not necessarily valid YAML).
TYPED = [
    "~", "null", "true", "no", "0", "-1", "1e400", ".nan", ".inf", "[]", "{}", "''", '""', "5s",
    "0s", "1x", "101%", "abc", "${lab.nope}", "${env:DRILLS_UNSET_X}", "${x", "*a", "&a",
    "!!int abc", "!!binary x", "|", ">", "[", "{", "'", '"', "#", "- x", "a: b", ": ", "\t",
    "SIGKILL", "site-a", "reads",
]  # fmt: skip
typed_scalars = st.one_of(
    st.sampled_from(TYPED),
    st.integers().map(str),
    st.floats().map(repr),
    st.text(printable, max_size=15),
)


@st.composite
def mutated(draw: st.DrawFn, junk: st.SearchStrategy[str] | None = None) -> str:
    """A shipped scenario (or the schedule) with a few line-level mutations."""
    lines = draw(st.sampled_from(sorted(SHIPPED.values()))).split("\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "scalar", "insert"]))
        if how == "delete" and len(lines) > 1:
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "indent":
            lines[i] = " " * draw(st.integers(0, 8)) + lines[i].lstrip(" ")
        elif how == "scalar":
            head, sep, _ = lines[i].partition(": ")
            if not sep:
                head, sep = (lines[i].rstrip(), " ") if lines[i].strip() == "-" else ("", "")
            lines[i] = head + sep + draw(typed_scalars)
        else:
            at = draw(st.integers(0, len(lines[i])))
            more = draw(junk if junk is not None else st.one_of(yaml_chars, st.text(max_size=4)))
            lines[i] = lines[i][:at] + more + lines[i][at:]
    return "\n".join(lines)


def dumped(data: Any, flow: bool) -> str:
    return yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True, sort_keys=False)


# --- the tests ----------------------------------------------------------------------------


def test_shipped_files_load(tmp_path: Path) -> None:
    """The unmutated inputs are valid, so mutations start from a known-good file."""
    for name, text in SHIPPED.items():
        loader = load_schedule if name == "schedule.yaml" else load_scenario
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        loader(path)


@FUZZ
@given(text=st.text())
@example(text="\x00")
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    check_both(tmp_path, text.encode("utf-8"))


@FUZZ
@given(raw=st.binary())
@example(raw=b"\x00")
def test_arbitrary_bytes(tmp_path: Path, raw: bytes) -> None:
    check_both(tmp_path, raw)


@FUZZ
@given(data=documents, flow=st.booleans())
@example(data={"\n": None}, flow=False)
def test_random_yaml_documents(tmp_path: Path, data: Any, flow: bool) -> None:
    check_both(tmp_path, dumped(data, flow).encode("utf-8"))


@FUZZ
@given(text=mutated())
@example(text=SHIPPED["db-failover.yaml"].replace("version: 1", "version: 1\x00", 1))
def test_mutated_shipped_files(tmp_path: Path, text: str) -> None:
    check_both(tmp_path, text.encode("utf-8"))


@FUZZ
@given(text=yaml_text)
@example(text="!!int ")
def test_yaml_looking_text(tmp_path: Path, text: str) -> None:
    """Text made of YAML punctuation, known keys and printable characters."""
    check_both(tmp_path, text.encode("utf-8"))


@FUZZ
@given(text=mutated(st.one_of(yaml_chars, st.text(printable, max_size=4))))
def test_mutated_shipped_files_printable(tmp_path: Path, text: str) -> None:
    """The mutations above, inserting only characters PyYAML's reader accepts."""
    check_both(tmp_path, text.encode("utf-8"))


# --- minimal reproductions of bugs fuzzing found (now fixed) ----------------------------

REPRODUCTIONS = {
    "control-char-readererror": "a: \x00\n",
    "empty-int-tag-indexerror": "!!int \n",
    "int-tag-valueerror": "name: !!int abc\n",
    "bool-tag-keyerror": "name: !!bool maybe\n",
    "timestamp-tag-attributeerror": "name: !!timestamp x\n",
    "float-tag-valueerror": "name: !!float x\n",
    "self-alias-recursionerror": "name: &a [*a]\n",
    "deep-nesting-recursionerror": "[" * 2000 + "]" * 2000 + "\n",
    "newline-in-key": '"a\\nb": 1\n',
    "newline-in-step": 'steps:\n  - "a\\nb"\n',
    "newline-in-step-kind": 'steps:\n  - "a\\nb": x\n',
    "newline-in-reference": 'name: "${a\\nb}"\n',
    "newline-in-schedule-key": 'required:\n  - "a\\nb": 1\n',
}


@pytest.mark.parametrize(
    "text",
    [pytest.param(t, id=k) for k, t in REPRODUCTIONS.items()],
)
def test_reproduction(tmp_path: Path, text: str) -> None:
    check_both(tmp_path, text.encode("utf-8"))


# --- the command line ---------------------------------------------------------------------


@CLI
@given(texts=st.lists(st.one_of(mutated(), st.text(max_size=40)), min_size=1, max_size=3))
@example(texts=["name: !!int abc\n"])
def test_validate_cli(tmp_path: Path, texts: list[str]) -> None:
    files = []
    for index, text in enumerate(texts):
        path = tmp_path / f"cli-{index}.yaml"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    result = subprocess.run(
        [sys.executable, "-m", "drills", "validate", *files],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for line in result.stderr.splitlines():
        assert any(line.startswith(f) for f in files), f"stray stderr line: {line!r}"
    expected_ok = {f for f in files if not re.search(rf"^{re.escape(f)}", result.stderr, re.M)}
    assert (result.returncode == 0) == (len(expected_ok) == len(files)), result.stderr
