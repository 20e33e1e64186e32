"""The systemctl commands drills runs on a host for a systemd unit target, and how it reads the
unit's state. Each command is one shell script sent on ssh's standard input; the unit's name is
checked (a plain unit name, never an option) and quoted."""

from __future__ import annotations

import re
import shlex
import signal
from dataclasses import dataclass

UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.service$")
PROPERTIES = "LoadState,ActiveState,SubState,MainPID,InvocationID,ControlGroup"
SEPARATOR = "--- drills: own cgroup ---"


OTHER_TYPES = ("socket", "target", "timer", "mount", "automount", "scope", "slice", "path")


def unit_name(value: str) -> str:
    """`NAME` or `NAME.service`, as a full service name; ValueError for anything else."""
    name = value if value.endswith(".service") else f"{value}.service"
    other = "." in value and value.rpartition(".")[2] in (*OTHER_TYPES, "swap", "device")
    if value.startswith("-") or other or not UNIT_NAME.match(name):
        raise ValueError(f"{value!r} is not a systemd service name (NAME or NAME.service)")
    return name


@dataclass(frozen=True)
class UnitState:
    load: str
    active: str
    sub: str
    main_pid: int
    invocation: str
    cgroup: str
    own_cgroups: tuple[str, ...]  # of the shell drills ran the query in, and its ancestors

    @property
    def running(self) -> bool:
        return self.active in ("active", "reloading")

    def holds_own_session(self) -> bool:
        """Whether the unit's processes include drills' own SSH session on the host or one of
        its ancestors (the sshd that listens, whatever cgroup pam_systemd moved the session
        to): stopping or killing it would cut the connection its revert needs."""
        if not self.cgroup:
            return False
        return any(
            own == self.cgroup or own.startswith(f"{self.cgroup}/") for own in self.own_cgroups
        )


# The cgroups of the shell and each of its ancestors up to pid 1 (the session, sshd's
# per-connection process, the sshd that listens).
ANCESTORS_CGROUPS = """pid=$$
while [ "$pid" -gt 1 ] 2>/dev/null; do
  cat "/proc/$pid/cgroup" 2>/dev/null
  pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
done
"""


def show_script(unit: str) -> str:
    return (
        f"systemctl show --property={PROPERTIES} -- {shlex.quote(unit)}\n"
        f"echo '{SEPARATOR}'\n{ANCESTORS_CGROUPS}"
    )


def parse_state(output: str) -> UnitState:
    shown, _, cgroups = output.partition(SEPARATOR)
    values = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    return UnitState(
        load=values.get("LoadState", ""),
        active=values.get("ActiveState", ""),
        sub=values.get("SubState", ""),
        main_pid=int(values.get("MainPID") or 0),
        invocation=values.get("InvocationID", ""),
        cgroup=values.get("ControlGroup", ""),
        own_cgroups=own_cgroups(cgroups),
    )


def own_cgroups(proc_cgroup: str) -> tuple[str, ...]:
    """The shell's cgroups in the hierarchies systemd may manage, from /proc/self/cgroup: the
    unified one (`0::`) and the named systemd one of a hybrid or legacy layout."""
    found: list[str] = []
    for line in proc_cgroup.splitlines():
        hierarchy, _, path = line.partition(":")[2].partition(":")
        if (hierarchy == "name=systemd" or line.startswith("0::")) and path not in found:
            found.append(path)
    return tuple(found)


def kill_script(unit: str, sig: signal.Signals, invocation: str | None = None) -> str:
    """Send `sig` to every process of the unit; with `invocation`, only while that invocation
    of the unit is the one running (a unit restarted since is not ours to signal)."""
    kill = f"systemctl kill --kill-who=all --signal={sig.name} -- {shlex.quote(unit)}"
    if invocation is None:
        return f"{kill}\n"
    check = f'[ "$(systemctl show --value --property=InvocationID -- {shlex.quote(unit)})" = '
    return f"{check}{shlex.quote(invocation)} ] || {{ echo gone; exit 0; }}\n{kill} && echo sent\n"


def action_script(action: str, unit: str) -> str:
    """`systemctl stop|start|restart UNIT`."""
    assert action in ("stop", "start", "restart")
    return f"systemctl {action} -- {shlex.quote(unit)}\n"


def start_unless_active_script(unit: str) -> str:
    quoted = shlex.quote(unit)
    return (
        f"if systemctl is-active --quiet -- {quoted}; then echo active; "
        f"else systemctl start -- {quoted} && echo started; fi\n"
    )
