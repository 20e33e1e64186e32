"""What a lease in the store is keyed by: a target's identity across hosts."""

from __future__ import annotations

from drills.store.leases import lease_key


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
