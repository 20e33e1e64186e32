from __future__ import annotations

import signal
import subprocess

import pytest

from drills.hosts.systemctl import (
    SEPARATOR,
    kill_script,
    own_cgroups,
    parse_state,
    show_script,
    unit_name,
)

HYBRID = "9:name=systemd:/system.slice/ssh.service\n4:memory:/x\n0::/\n"
# A unified systemd on a hybrid machine: the named hierarchy is not its own.
NAMESPACED = "9:name=systemd:/\n0::/system.slice/ssh.service\n"
UNIFIED = "0::/user.slice/user-0.slice/session-4.scope\n"


def test_a_unit_name_is_a_service_and_never_an_option() -> None:
    assert unit_name("nginx") == "nginx.service"
    assert unit_name("postgresql@15-main.service") == "postgresql@15-main.service"
    for bad in ("-H evil", "--now", "a b", "x;rm", "sshd.socket", "a/b.service", ""):
        with pytest.raises(ValueError):
            unit_name(bad)
    assert unit_name("timer") == "timer.service"


def test_own_cgroups_are_systemds_in_any_layout() -> None:
    assert own_cgroups(HYBRID) == ("/system.slice/ssh.service", "/")
    assert own_cgroups(UNIFIED) == ("/user.slice/user-0.slice/session-4.scope",)
    assert own_cgroups("") == ()


def show(cgroups: str, control_group: str = "/system.slice/ssh.service") -> str:
    return (
        "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=42\n"
        f"InvocationID=abc\nControlGroup={control_group}\n{SEPARATOR}\n{cgroups}"
    )


def test_a_unit_that_holds_drills_own_session_is_told() -> None:
    state = parse_state(show(HYBRID))
    assert state.running and state.main_pid == 42 and state.invocation == "abc"
    assert state.holds_own_session()
    assert parse_state(show(NAMESPACED)).holds_own_session()
    assert not parse_state(show(UNIFIED)).holds_own_session()
    assert not parse_state(show(HYBRID, "/system.slice/ssh")).holds_own_session()


def test_a_pause_is_undone_only_for_the_same_invocation(tmp_path: object) -> None:
    script = kill_script("web.service", signal.SIGCONT, "abc")
    fake = 'systemctl() { if [ "$1" = show ]; then echo "$ID"; else echo "kill $*" >&2; fi; }\n'
    same = subprocess.run(
        ["sh", "-c", fake + script], env={"ID": "abc"}, capture_output=True, text=True
    )
    assert same.stdout.strip() == "sent"
    assert "kill kill --kill-who=all --signal=SIGCONT -- web.service" in same.stderr
    other = subprocess.run(
        ["sh", "-c", fake + script], env={"ID": "new"}, capture_output=True, text=True
    )
    assert other.stdout.strip() == "gone" and other.stderr == ""
    refused = fake.replace('echo "kill $*" >&2', "return 1")
    failed = subprocess.run(
        ["sh", "-c", refused + script], env={"ID": "abc"}, capture_output=True, text=True
    )
    assert failed.returncode != 0 and failed.stdout == ""  # never "sent" for a failed kill


def test_the_ancestors_cgroups_count_once_each() -> None:
    listening = "0::/system.slice/ssh.service\n"
    assert own_cgroups(UNIFIED + UNIFIED + listening) == (
        "/user.slice/user-0.slice/session-4.scope",
        "/system.slice/ssh.service",
    )
    assert parse_state(show(UNIFIED + listening)).holds_own_session()


def test_the_query_quotes_the_unit() -> None:
    assert "-- 'a@b c.service'" in show_script("a@b c.service")
