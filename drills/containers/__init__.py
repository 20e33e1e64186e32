"""Containers as drill targets: the engine connection, container selection, the iptables
helper, and images built from the host for machines without a registry."""
