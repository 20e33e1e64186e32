"""3,000 samples/s against a PostgreSQL server the test freezes itself (issue 14): 30
postgres-read probes every 10 ms, one connection each, see one outage each, as long as the
freeze within one interval + 10 ms (the issue's tolerance).

The truth is taken by the test, outside drills: SIGSTOP to the postmaster and every process
under it, SIGCONT a second later, the length between the two calls (bench/capacity.py's
`sample_through_a_freeze`, which `make bench` uses as well). Before issue 14 every probe
reported 37-52 outages at this load and the lower bound was 1.5-1.8 s off.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.capacity import sample_through_a_freeze
from drills.checker import summarize_probe
from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab
from drills.lateness import harness_lag, overload_error

pytestmark = pytest.mark.postgres

PROBES = 30
INTERVAL_MS = 10
INTERVAL_S = INTERVAL_MS / 1000
# One interval + 10 ms. Measured with the event-loop engine at this load: 1.3-12.7 ms over
# ten runs (bench/capacity.py); 1.5 s before issue 14, 14-30 ms with a thread per connection.
BOUND_S = INTERVAL_S + 0.010


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    lab = PostgresPairLab(
        PostgresPairConfig.model_validate({"kind": "postgres-pair"}), lambda message: None
    )
    handle = lab.start()
    try:
        pid_file = lab.servers[0].datadir / "postmaster.pid"
        yield handle.variables["a.direct_dsn"], int(pid_file.read_text().split()[0])
    finally:
        lab.stop()


def test_thirty_probes_at_10ms_see_one_outage_each_as_long_as_the_freeze(
    server: tuple[str, int],
) -> None:
    log, truth, _ = sample_through_a_freeze(*server, PROBES, INTERVAL_MS, connections=1)
    history = log.history
    assert len(history.probes) == PROBES
    summaries = [summarize_probe(history, info, stable=3) for info in history.probes]
    assert all(len(s.outages) <= 1 for s in summaries), [s.outages for s in summaries]
    overloaded = overload_error(harness_lag(history.ops, sum(p.skipped for p in history.probes)))
    if overloaded is not None:  # said so, as a drill would (verdict `error`): no figure to check
        pytest.skip(f"this machine is too busy to check the bound now: {overloaded}")
    for info, summary in zip(history.probes, summaries, strict=True):
        assert len(summary.outages) == 1, (info.name, summary.outages)
        lower, upper = summary.outages[0].bounds_s(info.stopped_ns)
        # Never shorter than the freeze allows: the first failing sample is due at most one
        # interval after the freeze began, and the server answers nothing until it thaws.
        assert lower >= truth - INTERVAL_S - 0.001, (info.name, lower, truth)
        assert lower - truth <= BOUND_S, (info.name, lower, truth)
        assert upper >= lower
