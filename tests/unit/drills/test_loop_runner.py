"""The event-loop engine: the same open-loop rules as the threaded one (due times on the grid,
deadlines, pool exhaustion, crashed probes), with non-blocking clients on one thread."""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from drills.engines import probe_runner
from drills.history import CRASHED, Clock, HistoryLog, Op, Outcome, ProbeInfo
from drills.lateness import POOL_HELD
from drills.loop_runner import LoopRunner
from drills.probe import READ, Exchange, LoopClient, Sample, Wait
from drills.threaded_runner import ThreadedRunner
from probes.tcp import TcpConfig, TcpProbe
from tests.unit.drills.test_openloop import BrokenLog, ReadProbe, ok_after, run_for, sampled_for

MS = 1_000_000


class Idle:
    """A socket that is never readable: waiting on it lasts exactly until the wait's time."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


class LatencyClient(LoopClient):
    """Answers ok after `latency_s`, or never (None); `crash` raises inside the exchange."""

    def __init__(self, idle: Idle, latency_s: float | None, crash: bool = False) -> None:
        self.idle, self.latency_s, self.crash = idle, latency_s, crash
        self.closed = 0

    def exchange(self, seq: int) -> Exchange:
        if self.crash:
            raise RuntimeError("probe bug")
        until = None
        if self.latency_s is not None:
            until = time.monotonic_ns() + round(self.latency_s * 1e9)
        try:
            yield Wait(self.idle.ours.fileno(), READ, until)
        except TimeoutError:
            return Sample(Outcome.OK)
        return Sample(Outcome.FAIL, "answered")  # never: nothing is sent on it

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def idle() -> Iterator[Idle]:
    pair = Idle()
    yield pair
    pair.close()


def drive(
    clients: list[LoopClient], seconds: float, **config: Any
) -> tuple[list[Op], ProbeInfo, LoopRunner]:
    probe = ReadProbe(ok_after(0), connections=len(clients), **config)
    log = HistoryLog(Clock.now())
    runner = LoopRunner(probe, log, log.history.clock, clients, stalls=None)
    return (*sampled_for(runner, log, seconds), runner)


def test_samples_are_due_on_the_grid_and_issued_on_time(idle: Idle) -> None:
    clients: list[LoopClient] = [LatencyClient(idle, 0.002) for _ in range(2)]
    ops, info, _ = drive(clients, 0.3, interval=0.01)
    assert len(ops) + info.skipped >= 20
    assert [op.seq for op in ops] == list(range(1, len(ops) + 1))
    for op in ops:
        assert (op.invoke_ns - info.started_ns) % (10 * MS) == 0
        assert op.issued_ns is not None and op.issued_ns >= op.invoke_ns
    assert all(op.outcome is Outcome.OK for op in ops if not op.late)
    assert all(op.complete_ns - op.invoke_ns >= 2 * MS for op in ops)


def test_a_sample_past_its_deadline_is_timed_out_and_keeps_its_connection(idle: Idle) -> None:
    ops, _, _ = drive([LatencyClient(idle, None)], 0.2, interval=0.02, timeout=0.05)
    first, *later = ops
    assert first.outcome is Outcome.FAIL and first.detail == "timed out after 0.05s"
    assert first.complete_ns - first.invoke_ns == 50 * MS
    # The connection is still held by a sample the target never answered: the target's fail.
    assert later and all(op.detail.startswith("no free connection") for op in later)
    assert all(op.outcome is Outcome.FAIL and not op.late for op in later)


def test_a_pool_held_by_samples_that_were_up_is_the_harness_not_the_target(idle: Idle) -> None:
    ops, _, _ = drive([LatencyClient(idle, 0.015)], 0.2, interval=0.01, slow=0.1)
    blocked = [op for op in ops if op.detail.startswith("no free connection")]
    assert blocked and all(op.late == POOL_HELD for op in blocked)
    assert all(op.outcome is Outcome.OK for op in ops if not op.late)


def test_a_probe_that_crashes_is_unknown_and_its_connection_reopened(idle: Idle) -> None:
    client = LatencyClient(idle, 0.001, crash=True)
    ops, _, _ = drive([client], 0.05, interval=0.01)
    assert ops and all(op.outcome is Outcome.UNKNOWN for op in ops)
    assert ops[0].detail.startswith(CRASHED) and "probe bug" in ops[0].detail
    assert client.closed >= len(ops)


def test_stop_is_safe_twice_and_on_a_runner_that_never_started(idle: Idle) -> None:
    probe = ReadProbe(ok_after(0), connections=1)
    log = HistoryLog(Clock.now())
    never = LoopRunner(probe, log, log.history.clock, [LatencyClient(idle, 0)], stalls=None)
    never.stop()
    never.stop()
    _, _, runner = drive([LatencyClient(idle, 0.001)], 0.03, interval=0.01)
    runner.stop()


def test_a_port_nobody_listens_on_fails_as_the_threaded_client_says() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()
    config = TcpConfig.model_validate({"kind": "tcp", "port": port, "interval": "10ms"})
    client = TcpProbe("port", config, "run").loop_client()
    assert client is not None
    ops, _, _ = drive([client], 0.05, interval=0.01)
    assert ops and {op.detail for op in ops} == {"ConnectionRefusedError: Connection refused"}


def test_the_engine_is_the_loop_for_addresses_and_threads_for_names() -> None:
    log = HistoryLog(Clock.now())
    clock = log.history.clock
    address = TcpConfig.model_validate({"kind": "tcp", "host": "127.0.0.1", "port": 1})
    name = TcpConfig.model_validate({"kind": "tcp", "host": "localhost", "port": 1})
    assert isinstance(probe_runner(TcpProbe("a", address, "r"), log, clock), LoopRunner)
    assert isinstance(probe_runner(TcpProbe("n", name, "r"), log, clock), ThreadedRunner)
    assert isinstance(probe_runner(ReadProbe(ok_after(0)), log, clock), ThreadedRunner)


def test_an_error_recording_a_sample_does_not_stop_the_loop(idle: Idle) -> None:
    """As on threads: the failure is the history's, and the probe keeps sampling."""
    log = BrokenLog(Clock.now())
    probe = ReadProbe(ok_after(0), interval=0.02, connections=1)
    runner = LoopRunner(probe, log, log.history.clock, [LatencyClient(idle, 0.001)])
    run_for(runner, 0.4)
    assert log.failure is not None and "internal error recording a sample of fake" in log.failure
    assert runner.state.fail == 0, runner.state.last_detail
    assert runner.state.ok > 10


class AnswerClient(LoopClient):
    """Ok once the test writes to its socket."""

    def __init__(self, idle: Idle) -> None:
        self.idle = idle

    def exchange(self, seq: int) -> Exchange:
        yield Wait(self.idle.ours.fileno(), READ)
        self.idle.ours.recv(16)
        return Sample(Outcome.OK)


def one_sample(
    idle: Idle, busy: tuple[float, float] | None, answer_at: float | None, in_timer: bool = False
) -> Op:
    """One sample (timeout 50 ms): the loop kept busy over `busy` (from, to, seconds after the
    sample was due; by a call, or by a timer when `in_timer`) and the answer written at
    `answer_at`."""
    probe = ReadProbe(ok_after(0), interval=1.0, timeout=0.05, connections=1)
    log = HistoryLog(Clock.now())
    runner = LoopRunner(probe, log, log.history.clock, [AnswerClient(idle)], stalls=None)
    runner.start()
    assert runner._loop is not None
    events = [(busy[0], "busy")] if busy else []
    events += [(answer_at, "answer")] if answer_at is not None else []
    for at, what in sorted(events):
        time.sleep(max(0.0, runner.started_ns / 1e9 + at - time.monotonic()))
        if what == "busy":
            assert busy is not None
            loop, nap = runner._loop, functools.partial(time.sleep, busy[1] - busy[0])
            if in_timer:  # the deadline, due during a timer, fires only in the next pass
                loop.call_soon_threadsafe(functools.partial(loop.call_at, time.monotonic_ns(), nap))
            else:
                loop.call_soon_threadsafe(nap)
        else:
            idle.theirs.send(b"x")
    time.sleep(max(0.0, runner.started_ns / 1e9 + 0.15 - time.monotonic()))
    runner.stop()
    return log.history.ops_of("fake")[0]


def test_an_answer_that_came_while_the_loop_was_busy_is_not_a_timeout(idle: Idle) -> None:
    """Before: read after the deadline, it was recorded as the target's timeout."""
    op = one_sample(idle, busy=(0.01, 0.09), answer_at=0.03)
    assert op.late.startswith("its deadline was noticed"), op
    assert op.outcome is Outcome.FAIL  # what the timeout says, left out of downtime as late


def test_an_answer_read_after_a_busy_deadline_is_not_a_timeout(idle: Idle) -> None:
    op = one_sample(idle, busy=(0.01, 0.09), answer_at=0.03, in_timer=True)
    assert op.late.startswith("its deadline was noticed"), op


def test_a_timeout_while_the_loop_listened_stays_the_targets(idle: Idle) -> None:
    op = one_sample(idle, busy=None, answer_at=0.08)
    assert (op.outcome, op.detail, op.late) == (Outcome.FAIL, "timed out after 0.05s", "")


def test_no_answer_across_a_busy_deadline_is_still_a_timeout(idle: Idle) -> None:
    """The loop looked at the socket after the deadline and found nothing: nothing came."""
    op = one_sample(idle, busy=(0.01, 0.09), answer_at=None)
    assert (op.outcome, op.late) == (Outcome.FAIL, "")


def test_an_answer_read_late_counts_from_when_the_loop_woke(idle: Idle) -> None:
    op = one_sample(idle, busy=None, answer_at=0.02)
    assert op.outcome is Outcome.OK and not op.late
    assert 15 * MS <= op.complete_ns - op.invoke_ns < 45 * MS


def test_a_busy_loop_tells_once_why_every_probe_on_it_skipped_due_times(idle: Idle) -> None:
    log = HistoryLog(Clock.now())
    probes = [ReadProbe(ok_after(0), interval=0.01, connections=1) for _ in range(2)]
    for i, probe in enumerate(probes):
        probe.name = f"p{i}"
    runners = [
        LoopRunner(probe, log, log.history.clock, [LatencyClient(idle, 0.001)], stalls=None)
        for probe in probes
    ]
    for runner in runners:
        runner.start()
    time.sleep(0.05)
    loop = runners[0]._loop
    assert loop is not None and loop is runners[1]._loop
    loop.call_soon_threadsafe(functools.partial(time.sleep, 0.08))  # holds every probe on it
    time.sleep(0.15)
    for runner in runners:
        runner.stop()
    assert all(runner.skipped >= 4 for runner in runners)
    [event] = log.history.events  # one wake of the loop: one event, for both probes
    assert (event.source, event.subject) == ("harness", "probe loop")
    busy = float(event.change.split("busy ")[1].split(" ms")[0])
    assert busy >= 50.0, event.change  # it was busy, not held: the sleep ran on the loop
