"""What a lease in the store is keyed by (a target's identity across hosts), and when its
holder is known to be gone from this machine."""

from __future__ import annotations

import os
import subprocess

from drills.store.leases import holder_gone, lease_key, process_identity


def test_a_process_found_by_a_pid_file_is_this_hosts_own() -> None:
    assert lease_key("process:/run/app.pid", "dc1-runner") == "process:dc1-runner:/run/app.pid"


def test_shared_targets_keep_their_keys() -> None:
    for key in (
        "container:tcp://10.0.0.7:2376:4f2a",
        "host:db1.dc1:22:unit:postgresql.service",
        "upstream:10.0.0.5:5432",
        "name:dc1-db1-firewall",
    ):
        assert lease_key(key, "dc1-runner") == key


def test_this_process_is_itself_and_not_gone() -> None:
    me = process_identity(os.getpid())
    assert me is not None and me == process_identity(os.getpid())
    assert not holder_gone("here", "here", os.getpid(), me)


def test_a_dead_holder_of_this_machine_is_gone() -> None:
    child = subprocess.Popen(["sleep", "30"])
    identity = process_identity(child.pid)
    child.kill()
    child.wait()
    assert identity is not None and holder_gone("here", "here", child.pid, identity)


def test_a_holder_judged_from_elsewhere_is_never_gone() -> None:
    me = process_identity(os.getpid())
    assert me is not None
    boot, namespace, started = me.rsplit(":", 2)
    dead = 2**22 + 1  # above any pid this machine hands out
    assert not holder_gone("other-host", "here", dead, me)  # another host: its lease runs out
    assert not holder_gone("here", "here", dead, f"{boot}:{namespace}1:{started}")  # a container
    assert not holder_gone("here", "here", dead, f"other-boot:{namespace}:{started}")
    assert not holder_gone("here", "here", dead, None)  # its start time was unknown
    assert holder_gone("here", "here", dead, me)
