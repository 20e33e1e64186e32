"""How to reach a host: `host: {ssh: USER@NAME, port, key, known_hosts}` on a target."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from drills.durations import Duration, format_duration
from drills.model import StrictModel

# A user and a host name or address; nothing that ssh could read as an option.
DESTINATION = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.:_-]*$")


class HostSpec(StrictModel):
    ssh: str = Field(description="USER@HOST (or HOST: ssh's default user) to log in as")
    port: int = Field(22, ge=1, le=65535)
    key: Path | None = Field(None, description="private key file (default: ssh's own)")
    known_hosts: Path | None = Field(
        None, description="known_hosts file holding the host's key (default: ssh's own)"
    )
    connect_timeout: Duration = Field(10.0, description="give up connecting after this long")

    @field_validator("ssh")
    @classmethod
    def _destination(cls, value: str) -> str:
        if not DESTINATION.match(value):
            raise ValueError(f"{value!r} is not USER@HOST or HOST")
        return value

    @field_validator("key", "known_hosts")
    @classmethod
    def _file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if any(c.isspace() or c == "%" for c in str(value)):
            # ssh splits UserKnownHostsFile on white space and expands % in both
            raise ValueError(f"{str(value)!r}: a path with white space or '%' (ssh reads them)")
        return value.expanduser()  # as ssh would; the journal then holds the real path

    @property
    def hostname(self) -> str:
        return self.ssh.rpartition("@")[2]

    def describe(self) -> str:
        return self.ssh if self.port == 22 else f"{self.ssh}:{self.port}"

    def pinned(self) -> dict[str, Any]:
        """The spec with its files made absolute, for a journal read back from elsewhere."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["connect_timeout"] = format_duration(self.connect_timeout)  # read back as written
        for key in ("key", "known_hosts"):
            if key in data:
                data[key] = str(Path(data[key]).resolve())
        return data


def host_allowed(patterns: list[str], spec: HostSpec) -> str | None:
    """The allow-list entry (a shell glob on the host name or address) that lets faults touch
    this host, if any."""
    return next((p for p in patterns if fnmatch.fnmatchcase(spec.hostname, p)), None)
