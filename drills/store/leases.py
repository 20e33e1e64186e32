"""Leases on targets in the store: two drills on different hosts must not act on the same
container, host process, unit, link or named resource at once.

A lease is a row keyed by the target's identity (as the local locks name it; a process found
by a pid file on this machine is qualified with this host's name). All of a drill's leases are
taken in one transaction, or none. The holder renews them every third of `lease_ttl`; a holder
that died stops renewing, and its leases can be taken over once they expire.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid
from datetime import datetime
from pathlib import Path

import psycopg

from drills.errors import DrillsError
from drills.locks import Locked, Locks
from drills.proctree import start_time
from drills.store.schema import open_store
from drills.store.settings import Store, StoreUnreachable, unreachable

# Taken when free or expired; with a holder named, taken from that holder (dead, on this host).
TAKE = (
    "INSERT INTO drills_leases AS held (key, holder, host, pid, pid_start, scenario, since,"
    " expires_at) VALUES (%s, %s, %s, %s, %s, %s, now(), now() + make_interval(secs => %s))"
    " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, host = excluded.host,"
    " pid = excluded.pid, pid_start = excluded.pid_start, scenario = excluded.scenario,"
    " since = excluded.since, expires_at = excluded.expires_at"
    " WHERE held.expires_at < now() OR held.holder = %s RETURNING key"
)


def lease_key(key: str, host: str) -> str:
    """What a local lock key names across hosts: a pid file's process is this host's own."""
    return f"process:{host}:{key.removeprefix('process:')}" if key.startswith("process:") else key


def _utc(value: object) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else str(value)


class StoreLeases:
    def __init__(self, store: Store, keys: list[str], scenario: str) -> None:
        self.store = store
        self.host = socket.gethostname()
        self.keys = sorted({lease_key(key, self.host) for key in keys})
        self.scenario = scenario
        self.holder = uuid.uuid4()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def acquire(self) -> None:
        if not self.keys:
            return
        try:
            self._conn = open_store(self.store)
            with self._conn.transaction():
                for key in self.keys:
                    self._take(key)
        except (psycopg.Error, StoreUnreachable) as exc:
            self._close()
            why = str(unreachable(self.store, exc) if isinstance(exc, psycopg.Error) else exc)
            raise StoreUnreachable(
                f"{why}: the drill's targets cannot be leased there, so nothing was touched "
                "(another host might be drilling them)"
            ) from None
        except BaseException:
            self._close()
            raise
        self._thread = threading.Thread(target=self._renew, name="drills-leases", daemon=True)
        self._thread.start()

    def _take(self, key: str) -> None:
        assert self._conn is not None
        me = (self.holder, self.host, os.getpid(), start_time(os.getpid()), self.scenario)
        if self._conn.execute(TAKE, (key, *me, self.store.lease_ttl, None)).fetchone():
            return
        found = self._conn.execute(
            "SELECT host, pid, pid_start, scenario, since, expires_at, holder FROM drills_leases"
            " WHERE key = %s",
            (key,),
        ).fetchone()
        host, pid, pid_start, scenario, since, expires, holder = found or ("?",) * 7
        gone = host == self.host and start_time(int(str(pid))) != pid_start
        # A holder that ran here and is gone: a drill that could not release its leases.
        if gone and self._conn.execute(TAKE, (key, *me, self.store.lease_ttl, holder)).fetchone():
            return
        raise Locked(
            f"{key} is in use by another drill: scenario {scenario!r}, pid {pid} on {host}, "
            f"since {_utc(since)} (UTC); its lease in the store runs to {_utc(expires)} "
            "unless its holder renews it"
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.store.lease_ttl / 3):
            try:
                if self._conn is None:
                    self._conn = self.store.connect(timeout=self.store.lease_ttl / 3)
                renewed = self._conn.execute(
                    "UPDATE drills_leases SET expires_at = now() + make_interval(secs => %s)"
                    " WHERE holder = %s",
                    (self.store.lease_ttl, self.holder),
                ).rowcount
            except (psycopg.Error, DrillsError) as exc:
                self._say(f"leases not renewed: {unreachable(self.store, exc)}")
                self._close()
                continue
            if renewed < len(self.keys):
                self._say(f"{len(self.keys) - renewed} of its leases were taken over")

    def _say(self, what: str) -> None:
        ttl = f"{self.store.lease_ttl:g} s"
        print(f"drills: {what}; a lease expires {ttl} after its last renewal", file=sys.stderr)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.store.lease_ttl)
        try:
            if self._conn is None and self.keys:
                self._conn = self.store.connect()
            if self._conn is not None:
                self._conn.execute("DELETE FROM drills_leases WHERE holder = %s", (self.holder,))
        except (psycopg.Error, DrillsError) as exc:
            self._say(f"leases not released: {unreachable(self.store, exc)}")
        finally:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class TargetLocks:
    """The drill's locks in its state directory, then, with a store, its leases there."""

    def __init__(
        self, keys: list[str], scenario: str, state_dir: Path | None, store: Store | None
    ) -> None:
        self.local = Locks(keys, scenario, state_dir)
        self.leases = StoreLeases(store, keys, scenario) if store is not None else None

    def acquire(self) -> None:
        self.local.acquire()
        try:
            if self.leases is not None:
                self.leases.acquire()
        except BaseException:
            self.local.release()
            raise

    def release(self) -> None:
        try:
            if self.leases is not None:
                self.leases.release()
        finally:
            self.local.release()
