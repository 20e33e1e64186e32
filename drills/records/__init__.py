"""Run records: one JSON file per drill plus its raw history, hash-chained per directory.

The keys written are a contract (docs/records.md): reports, metrics and other tools read them.
`model` types them, `build` makes one from the checker's result, `chain` links and verifies
the files, `store` reads and writes one record, `runs` reads a directory of them.
"""

from drills.records.build import RunInfo, build_record, host_facts, utc_basic, utc_iso
from drills.records.chain import (
    chained_files,
    self_digest,
    sha256_file,
    verify_chain,
    write_chained,
)
from drills.records.files import record_files, record_text, write_atomically
from drills.records.model import SCHEMA_VERSION, RunRecord
from drills.records.runs import Run, in_quarter, load_runs, read_run, read_runs
from drills.records.store import load_record, parse_record, read_record_data, write_record

__all__ = [
    "SCHEMA_VERSION",
    "Run",
    "RunInfo",
    "RunRecord",
    "build_record",
    "chained_files",
    "host_facts",
    "in_quarter",
    "load_record",
    "load_runs",
    "parse_record",
    "read_record_data",
    "read_run",
    "read_runs",
    "record_files",
    "record_text",
    "self_digest",
    "sha256_file",
    "utc_basic",
    "utc_iso",
    "verify_chain",
    "write_atomically",
    "write_chained",
    "write_record",
]
