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
from drills.journal import JournalEntry
from drills.locks import Locked, Locks
from drills.proctree import start_time
from drills.store.lease_journal import LeasesTaken
from drills.store.schema import open_store
from drills.store.settings import Store, StoreUnreachable, unreachable

# Taken when free or expired; with a holder named, taken from that holder (dead, on this host).
TAKE = (
    "INSERT INTO drills_leases AS held (key, holder, host, pid, process, scenario, since,"
    " expires_at) VALUES (%s, %s, %s, %s, %s, %s, now(), now() + make_interval(secs => %s))"
    " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, host = excluded.host,"
    " pid = excluded.pid, process = excluded.process, scenario = excluded.scenario,"
    " since = excluded.since, expires_at = excluded.expires_at"
    " WHERE held.expires_at < now() OR held.holder = %s RETURNING key"
)
HOLDER = (
    "SELECT host, pid, process, scenario, since, expires_at, holder FROM drills_leases"
    " WHERE key = %s"
)


def lease_key(key: str, host: str) -> str:
    """What a local lock key names across hosts: a pid file's process is this host's own."""
    return f"process:{host}:{key.removeprefix('process:')}" if key.startswith("process:") else key


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        return "?"


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def process_identity(pid: int) -> str | None:
    """A process as no other can be: this boot, this pid namespace, its pid's start time; None
    when its start time cannot be read (then it is never judged gone)."""
    started = start_time(pid)
    if started is None:
        return None
    return f"{_read('/proc/sys/kernel/random/boot_id')}:{_pid_namespace()}:{started}"


def holder_gone(host: str, here: str, pid: int, process: str | None) -> bool:
    """Whether a lease's holder ran in this machine's boot and pid namespace and is gone. A
    holder elsewhere (another host, a container with the host's name but its own pids) is
    never judged from here: its lease runs out instead."""
    if host != here or process is None:
        return False
    boot, namespace, _ = process.rsplit(":", 2)
    mine = process_identity(os.getpid()) or "?:?:?"
    if (boot, namespace) != tuple(mine.rsplit(":", 2)[:2]):
        return False
    return process_identity(pid) != process


def _utc(value: object) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else str(value)


Conn = psycopg.Connection[tuple[object, ...]]


class StoreLeases:
    def __init__(self, store: Store, keys: list[str], scenario: str) -> None:
        self.store = store
        self.host = socket.gethostname()
        self.keys = sorted({lease_key(key, self.host) for key in keys})
        self.scenario = scenario
        self.holder = uuid.uuid4()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        if not self.keys:
            return
        conn = None
        try:
            conn = open_store(self.store)
            with conn.transaction():
                for key in self.keys:
                    self._take(conn, key)
        except (psycopg.Error, StoreUnreachable) as exc:
            if conn is not None:
                conn.close()
            why = str(unreachable(self.store, exc) if isinstance(exc, psycopg.Error) else exc)
            raise StoreUnreachable(
                f"{why}: the drill's targets cannot be leased there, so nothing was touched "
                "(another host might be drilling them)"
            ) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        # The renewing thread owns this connection from here; release() uses one of its own.
        self._thread = threading.Thread(
            target=self._renew, args=(conn,), name="drills-leases", daemon=True
        )
        self._thread.start()

    def _take(self, conn: Conn, key: str) -> None:
        me = (self.holder, self.host, os.getpid(), process_identity(os.getpid()), self.scenario)
        for _ in range(3):  # a lease released between the take and the look is taken again
            if conn.execute(TAKE, (key, *me, self.store.lease_ttl, None)).fetchone():
                return
            found = conn.execute(HOLDER, (key,)).fetchone()
            if found is None:
                continue
            host, pid, process, scenario, since, expires, holder = found
            identity = None if process is None else str(process)
            gone = holder_gone(str(host), self.host, int(str(pid)), identity)
            if gone and conn.execute(TAKE, (key, *me, self.store.lease_ttl, holder)).fetchone():
                return  # a drill of this machine that died without releasing it
            raise Locked(
                f"{key} is in use by another drill: scenario {scenario!r}, pid {pid} on {host}, "
                f"since {_utc(since)} (UTC); its lease in the store runs to {_utc(expires)} "
                "unless its holder renews it"
            )
        raise Locked(f"{key}: could not take its lease in the store")

    def _renew(self, conn: Conn | None) -> None:
        try:
            while not self._stop.wait(self.store.lease_ttl / 3):
                try:
                    if conn is None:
                        conn = self.store.connect(timeout=self.store.lease_ttl / 3)
                    renewed = conn.execute(
                        "UPDATE drills_leases SET expires_at = now() + make_interval(secs => %s)"
                        " WHERE holder = %s",
                        (self.store.lease_ttl, self.holder),
                    ).rowcount
                except (psycopg.Error, DrillsError) as exc:
                    self._say(f"leases not renewed: {unreachable(self.store, exc)}")
                    if conn is not None:
                        conn.close()
                    conn = None
                    continue
                if renewed < len(self.keys):
                    self._say(f"{len(self.keys) - renewed} of its leases were taken over")
        finally:
            if conn is not None:
                conn.close()

    def _say(self, what: str) -> None:
        ttl = f"{self.store.lease_ttl:g} s"
        print(f"drills: {what}; a lease expires {ttl} after its last renewal", file=sys.stderr)

    def journal_entries(self) -> list[JournalEntry]:
        if self._thread is None:
            return []
        entry = LeasesTaken(store=self.store.display, holder=str(self.holder), keys=self.keys)
        return [entry]

    def release(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)  # a renewal in flight ends within the session's timeouts
        try:
            with self.store.connect() as conn:
                conn.execute("DELETE FROM drills_leases WHERE holder = %s", (self.holder,))
        except (psycopg.Error, DrillsError) as exc:
            self._say(f"leases not released: {unreachable(self.store, exc)}")


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

    def journal_entries(self) -> list[JournalEntry]:
        """What `drills recover` needs to release this drill's leases if it dies."""
        return self.leases.journal_entries() if self.leases is not None else []

    def release(self) -> None:
        try:
            if self.leases is not None:
                self.leases.release()
        finally:
            self.local.release()
