"""Signed records: HMAC-SHA256 with a key kept outside the reports directory.

The hash chain shows that a record changed only to someone who trusts the chain itself: whoever
can write the directory can rewrite a record and recompute every digest after it. A signature
needs the key, which lives elsewhere: `$DRILLS_SIGNING_KEY_FILE`, else `$DRILLS_SIGNING_KEY`,
else `signing_key_file:` in drills.yaml. A key file inside the records directory, or one that
its group or others may read or write, is refused. The signature covers the record's canonical
JSON (sorted keys, no spaces) without `signature` itself, so its `chain` and `self_sha256` too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drills.errors import DrillsError

KEY_FILE_ENV = "DRILLS_SIGNING_KEY_FILE"
KEY_ENV = "DRILLS_SIGNING_KEY"
ALG = "hmac-sha256"
MIN_KEY_BYTES = 16
WHERE = f"${KEY_FILE_ENV}, ${KEY_ENV} or signing_key_file in drills.yaml"


def canonical(record: dict[str, Any], leave_out: tuple[str, ...]) -> bytes:
    """The bytes digests and signatures are computed over: sorted keys, no spaces."""
    body = {k: v for k, v in record.items() if k not in leave_out}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


@dataclass(frozen=True)
class SigningKey:
    secret: bytes = field(repr=False)
    source: str  # where it came from, for messages: never the key itself

    @property
    def key_id(self) -> str:
        """Names the key in a record without revealing it: the start of its sha256."""
        return hashlib.sha256(self.secret).hexdigest()[:16]

    def _mac(self, record: dict[str, Any]) -> str:
        return hmac.new(self.secret, canonical(record, ("signature",)), "sha256").hexdigest()

    def signature(self, record: dict[str, Any]) -> dict[str, str]:
        return {"alg": ALG, "key_id": self.key_id, "value": self._mac(record)}

    def problem(self, record: dict[str, Any]) -> str | None:
        """Why `record` is not signed with this key, or None when it is."""
        signed = record.get("signature")
        if not isinstance(signed, dict):
            return "unsigned (written without the signing key, or its signature removed)"
        if signed.get("alg") != ALG:
            return f"signature algorithm {signed.get('alg')!r} is not {ALG}"
        if signed.get("key_id") != self.key_id:
            return f"signed with another key ({signed.get('key_id')!r}, this one is {self.key_id})"
        if not hmac.compare_digest(str(signed.get("value")), self._mac(record)):
            return "signature does not match (changed, or re-chained without the key)"
        return None


def _secret(text: bytes, source: str) -> SigningKey:
    secret = text.strip()
    if len(secret) < MIN_KEY_BYTES:
        raise DrillsError(f"{source}: a signing key has at least {MIN_KEY_BYTES} bytes")
    return SigningKey(secret, source)


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def key_from_file(path: Path, records_dir: Path | None) -> SigningKey:
    """The key in `path`, refused when whoever writes the records could read or replace it."""
    if records_dir is not None and _inside(path, records_dir):
        raise DrillsError(
            f"{path}: the signing key is inside the records directory {records_dir}: keep it "
            "where whoever can write the records cannot read it"
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise DrillsError(f"{path}: cannot read the signing key: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise DrillsError(f"{path}: the signing key is not a regular file")
        if mode & 0o077:
            raise DrillsError(
                f"{path}: the signing key is open to its group or others "
                f"(mode {stat.S_IMODE(mode):04o}): chmod 600 it"
            )
        return _secret(handle.read(), str(path))


def configured_key_file(config_file: Path | None) -> Path | None:
    """`signing_key_file` of drills.yaml, relative to the file's directory."""
    from drills.config import load_config

    if config_file is None:
        return None
    configured = load_config(config_file).signing_key_file
    if configured is None:
        return None
    return configured if configured.is_absolute() else config_file.parent / configured


def signing_key(
    records_dir: Path | None, config_file: Path | None = None, key_file: Path | None = None
) -> SigningKey | None:
    """The key in effect: `$DRILLS_SIGNING_KEY_FILE`, `$DRILLS_SIGNING_KEY`, then `key_file`
    (given, or drills.yaml's); None when there is none (records are then unsigned)."""
    if os.environ.get(KEY_FILE_ENV):
        return key_from_file(Path(os.environ[KEY_FILE_ENV]), records_dir)
    if os.environ.get(KEY_ENV):
        return _secret(os.environ[KEY_ENV].encode(), f"${KEY_ENV}")
    path = key_file or configured_key_file(config_file)
    return None if path is None else key_from_file(path, records_dir)
