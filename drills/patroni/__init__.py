"""Patroni: its REST API, the lab that runs a Patroni + etcd cluster, and the steps, targets and
probe that drill a cluster whose failover Patroni decides."""
