"""Incident steps: the emergencies failover cannot fix, made on a lab's PostgreSQL server.

`sql` (an operator's mistake, with the xid, LSN and commit time read back), `delete-config` (a
configuration file removed or garbled, then the node restarted) and `corrupt` (a relation's files
overwritten, or the data directory and optionally the WAL archive encrypted as ransomware
would). Each fills `facts["incident"]` for the checker and a later `restore` step. None undoes
the incident itself, except that `delete-config` puts the file back when the drill ends.
"""
