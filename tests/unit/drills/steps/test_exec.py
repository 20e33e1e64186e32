"""`exec` (issue 15 items 5 and 9): secrets reach the command as environment variables, never
in its text; the command runs in a process group of its own, which a timeout kills whole."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from drills.errors import ScenarioError, StepError
from drills.proctree import state
from drills.references import shell_quote_state
from drills.scenario import load_scenario
from drills.steps.base import RevertStack, StepContext
from drills.steps.exec import Exec

HOSTILE = "p@ss; touch /tmp/drills-pwned-$$ $(id) `id` 'q' \"d\" \\ $HOME"


def context() -> StepContext:
    return StepContext({}, {}, RevertStack(), {}, 1, lambda text: None)


def scenario(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "exec.yaml"
    path.write_text(
        "name: exec-secrets\n"
        "probes: {port: {kind: tcp, port: 1}}\n"
        "service_probe: port\n"
        f"steps:\n{steps}"
    )
    return path


def load(path: Path) -> list[object]:
    config = path.parent / "drills.yaml"
    config.write_text("version: 1\n")
    return list(load_scenario(path, config=config).scenario.steps)


def exec_steps(path: Path) -> list[Exec]:
    steps = load(path)
    return [step for step in steps if isinstance(step, Exec)]


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DRILLS_TEST_HOSTILE", HOSTILE)
    return HOSTILE


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo ${env:DRILLS_TEST_HOSTILE} > OUT", 'echo "$DRILLS_SECRET_1" > OUT'),
        ('echo "pw=${env:DRILLS_TEST_HOSTILE}!" > OUT', 'echo "pw=${DRILLS_SECRET_1}!" > OUT'),
        ("printf %s pw=${env:DRILLS_TEST_HOSTILE} > OUT", 'printf %s pw="$DRILLS_SECRET_1" > OUT'),
    ],
)
def test_a_secret_reaches_the_command_intact_through_its_environment(
    tmp_path: Path, secret: str, command: str, expected: str
) -> None:
    out = tmp_path / "out.txt"
    path = scenario(tmp_path, f"  - exec: '{command.replace('OUT', str(out))}'\n")
    (step,) = exec_steps(path)
    assert step.command == expected.replace("OUT", str(out))
    assert secret not in step.command and secret not in step.describe()
    step.run(context())
    written = out.read_text().removesuffix("\n")
    assert written.removeprefix("pw=").removesuffix("!") == secret
    assert not list(Path("/tmp").glob(f"drills-pwned-{os.getpid()}*"))


def test_each_reference_gets_one_variable_and_each_step_only_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_TEST_A", "first-secret")
    secret_file = tmp_path / "token"
    secret_file.write_text("second-secret\n")
    path = scenario(
        tmp_path,
        "  - exec: echo ${env:DRILLS_TEST_A} ${env:DRILLS_TEST_A}\n"
        f"  - exec: {{command: 'echo ${{file:{secret_file}}}', timeout: 5s}}\n"
        f"  - {{kind: exec, command: 'echo ${{file:{secret_file}}} ${{env:DRILLS_TEST_A}}'}}\n",
    )
    first, second, third = exec_steps(path)
    assert first.command == 'echo "$DRILLS_SECRET_1" "$DRILLS_SECRET_1"'
    assert second.command == 'echo "$DRILLS_SECRET_2"'
    assert third.command == 'echo "$DRILLS_SECRET_2" "$DRILLS_SECRET_1"'
    assert first.run(context()) == "first-secret first-secret"
    assert second.run(context()) == "second-secret"
    assert third.run(context()) == "second-secret first-secret"
    assert first._secret_env == {"DRILLS_SECRET_1": "first-secret"}


def test_a_secret_inside_single_quotes_is_refused(tmp_path: Path, secret: str) -> None:
    path = scenario(tmp_path, "  - exec: \"echo 'x ${env:DRILLS_TEST_HOSTILE}'\"\n")
    with pytest.raises(ScenarioError) as caught:
        exec_steps(path)
    (problem,) = caught.value.problems
    assert "steps[0].exec" in str(problem) and "inside single quotes" in problem.message
    assert secret not in str(problem)


def test_a_secret_in_a_start_command_is_refused(tmp_path: Path, secret: str) -> None:
    path = tmp_path / "start.yaml"
    path.write_text(
        "name: start-secret\n"
        "targets:\n"
        "  app: {pid_file: /tmp/app.pid, start: 'app --password ${env:DRILLS_TEST_HOSTILE}'}\n"
        "probes: {port: {kind: tcp, port: 1}}\n"
        "service_probe: port\n"
        "steps: [{wait: 1s}]\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load(path)
    (problem,) = caught.value.problems
    assert problem.key == "targets.app.start" and "never pasted into a command" in problem.message
    assert secret not in str(caught.value)


def test_validation_errors_never_show_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_TEST_NAME", "Not A Valid Name s3cr3t")
    monkeypatch.setenv("DRILLS_TEST_PORT", "port-s3cr3t")
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: ${env:DRILLS_TEST_NAME}\n"
        "probes: {port: {kind: tcp, port: 1}}\n"
        "service_probe: port\n"
        "steps: [{wait: '${env:DRILLS_TEST_PORT}'}]\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load(path)
    text = str(caught.value)
    assert len(caught.value.problems) == 2 and text.count("***") == 2, text
    assert "s3cr3t" not in text


@pytest.mark.parametrize(
    ("text", "quoting"),
    [
        ("echo ", ""),
        ("echo 'a", "'"),
        ("echo 'a\\'", ""),  # no escape inside single quotes: the quote closes them
        ('echo "a', '"'),
        ('echo "a\\"', '"'),  # an escaped double quote does not close them
        ("echo \"it's", '"'),
        ("echo \\'", ""),
        ("echo 'a' \"b\" c", ""),
    ],
)
def test_shell_quote_state(text: str, quoting: str) -> None:
    assert shell_quote_state(text) == quoting


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    command = f"sleep 300 & echo $! > {pid_file}; wait"
    step = Exec.model_validate({"kind": "exec", "command": command, "timeout": "500ms"})
    started = time.monotonic()
    with pytest.raises(StepError, match=r"exec timed out after 0\.5s"):
        step.run(context())
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while state(child) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state(child) in (None, "Z"), "the shell's child outlived the timeout"


def test_the_command_runs_in_a_session_of_its_own(tmp_path: Path) -> None:
    step = Exec.model_validate({"kind": "exec", "command": "ps -o sid= -p $$"})
    assert int(step.run(context())) != os.getsid(0)


def test_the_command_never_sees_the_harness_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLS_SIGNING_KEY", "signing-key-value")
    monkeypatch.setenv("DRILLS_PROXY_TOKEN", "proxy-token-value")
    monkeypatch.setenv("DRILLS_TEST_A", "the-user-s-own")
    command = "echo ${DRILLS_SIGNING_KEY-none} ${DRILLS_PROXY_TOKEN-none} $DRILLS_TEST_A"
    step = Exec.model_validate({"kind": "exec", "command": command})
    assert step.run(context()) == "none none the-user-s-own"
