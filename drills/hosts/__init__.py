"""Hosts reached over SSH as targets: processes found by pid file on another machine, and
iptables partitions applied there (docs/own-systems.md)."""
