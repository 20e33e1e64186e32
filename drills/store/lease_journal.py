"""The crash-journal entry of a drill's leases in the store: `drills recover` releases them
after the drill died, so that its targets are free at once rather than when the leases
expire. The journal names the store by its address only; recovery reaches it with the store
configured where it runs ($DRILLS_STORE or store.url, the password as for any command)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from drills.journal import JOURNAL, JournalEntry, Recovery


@JOURNAL.register("store-leases")
class LeasesTaken(JournalEntry):
    op: Literal["store-leases"] = "store-leases"
    store: str  # its address, without a password
    holder: str  # the drill's holder id in drills_leases
    keys: list[str] = Field(default_factory=list)
    subject: ClassVar[str] = "store"

    def undo(self, recovery: Recovery) -> str | None:
        from drills.config import config_path
        from drills.store.settings import answering, find_store

        found = find_store(None, config_path(None))
        if found is None or found.display != self.store:
            return (
                f"leases in {self.store} not released: that store is not configured here "
                "($DRILLS_STORE or store.url); they expire on their own"
            )
        with answering(found), found.connect() as conn:
            count = conn.execute(
                "DELETE FROM drills_leases WHERE holder = %s", (self.holder,)
            ).rowcount
        return f"released {count} lease{'s' * (count != 1)} in {self.store}" if count else None
