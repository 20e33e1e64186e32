"""Prometheus metrics of drill runs, from their run records (docs/records.md).

Three ways out, one set of metric definitions (`spec.SPECS`, documented in docs/metrics.md),
the samples of a record computed in `samples`:

- `push.push`: a per-run `CollectorRegistry` pushed to a Pushgateway after each drill
  (Prometheus' advice for batch jobs), grouping key `job="drills", scenario=<name>`;
- `push.write_textfile`: the same metrics for node_exporter's textfile collector, written
  atomically;
- `exporter.serve`: an exporter computing everything from the records directory on each
  scrape, plus the rehearsal schedule's state for the current quarter.

Rules: a measurement that is `null` in the record is not exported (no fake zeros); one-hot
metrics (`drills_verdict`, `drills_requirement_state`) carry every state with 0 or 1, so a
verdict never sticks at its old value; `drills_objective_met` is absent when the objective's
verdict is `unknown`. The Pushgateway replaces a whole group on each push, so the time of the
last success lives in a group of its own, `job="drills", scenario=<name>,
group="last_success"`, pushed only when it is known: a failing run does not erase it.
"""

from drills.metrics.exporter import Exporter, RecordsCollector, serve, start_exporter
from drills.metrics.push import (
    JOB,
    PUSHGATEWAY_ENV,
    SUCCESS_GROUP,
    after_drill,
    push,
    write_textfile,
)
from drills.metrics.samples import end_of, last_success_in, registry_for, run_samples
from drills.metrics.spec import METRICS, SPECS, Spec

__all__ = [
    "JOB",
    "METRICS",
    "PUSHGATEWAY_ENV",
    "SPECS",
    "SUCCESS_GROUP",
    "Exporter",
    "RecordsCollector",
    "Spec",
    "after_drill",
    "end_of",
    "last_success_in",
    "push",
    "registry_for",
    "run_samples",
    "serve",
    "start_exporter",
    "write_textfile",
]
