"""Run records: one JSON file per drill plus its raw history, hash-chained per directory.

The keys written are a contract (docs/records.md): reports, metrics and other tools read them.
`model` types them, `build` makes one from the checker's result, `chain` links the files,
`signing` signs them with a key kept elsewhere, `verify` checks both, `store` reads and writes
one record, `runs` reads a directory of them (leaving out, when asked, those that fail
verification), `crashed` writes the record of a drill that died.
"""

from drills.records.build import RunInfo, build_record, host_facts, utc_basic, utc_iso
from drills.records.chain import chained_files, self_digest, sha256_file, write_chained
from drills.records.files import record_files, record_text, write_atomically
from drills.records.model import SCHEMA_VERSION, RunRecord
from drills.records.runs import (
    KeyFrom,
    Run,
    in_quarter,
    load_runs,
    read_run,
    read_runs,
    reader_key,
)
from drills.records.signing import SigningKey, signing_key
from drills.records.store import load_record, parse_record, read_record_data, write_record
from drills.records.verify import Anchor, ChainCheck, Head, check_chain, verify_chain

__all__ = [
    "SCHEMA_VERSION",
    "Anchor",
    "ChainCheck",
    "Head",
    "KeyFrom",
    "Run",
    "RunInfo",
    "RunRecord",
    "SigningKey",
    "build_record",
    "chained_files",
    "check_chain",
    "host_facts",
    "in_quarter",
    "load_record",
    "load_runs",
    "parse_record",
    "read_record_data",
    "read_run",
    "read_runs",
    "reader_key",
    "record_files",
    "record_text",
    "self_digest",
    "sha256_file",
    "signing_key",
    "utc_basic",
    "utc_iso",
    "verify_chain",
    "write_atomically",
    "write_chained",
    "write_record",
]
