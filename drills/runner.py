"""The runner: lab up, probes on, the step timeline, probes off, final read, lab down.

Whatever happens (a failing step, an exception, Ctrl-C, SIGTERM) faults are reverted and the
lab is removed before the run returns, and a record is written saying what was measured.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from drills.checker import check
from drills.config import config_path, load_config
from drills.containers.resolve import container_targets
from drills.containers.target import ContainerTarget
from drills.engines import probe_runner
from drills.errors import Aborted, DrillsError, Interrupted, ProbeError, RecordError, StepError
from drills.files import os_error_text, private_dir
from drills.history import Clock, FinalRead, History, HistoryLog, StepEvent, open_history
from drills.hosts.resolve import check_hosts
from drills.journal import Journal, refuse_if_orphaned, state_dir
from drills.labs import LABS, Lab
from drills.live import LiveView
from drills.locks import target_keys
from drills.network.control import Network
from drills.network.scenario_links import OpenNetwork
from drills.openloop import ProbeRunner, start_all, stop_all
from drills.operator import Operator
from drills.participants import everyone
from drills.probe import PROBES, Probe, WriteProbe
from drills.records import RunInfo, RunRecord, build_record, signing_key, utc_basic, write_record
from drills.records.crashed import record_on_crash
from drills.resolved import check_config, scenario_targets
from drills.run_options import RunOptions as RunOptions  # re-exported: part of the API
from drills.run_options import RunResult as RunResult
from drills.scenario import LoadedScenario, Scenario, load_scenario
from drills.secrets import Redactor
from drills.signals import abort, deferred, interruptible
from drills.steps import RevertStack, StepConfig, StepContext
from drills.stopconditions import Monitor, stop_conditions
from drills.store.leases import TargetLocks
from drills.targets import Target


class Drill:
    def __init__(self, loaded: LoadedScenario, options: RunOptions) -> None:
        self.loaded = loaded
        self.scenario = loaded.scenario
        self.options = options
        self.redactor = Redactor(loaded.secrets)
        self.view = LiveView(
            f"drill {self.scenario.name}", live=options.live, redact=self.redactor.text
        )
        self.lab: Lab | None = None
        self.runners: list[ProbeRunner] = []
        self.reverts = RevertStack()
        self.lab_facts: dict[str, Any] = {}
        self.lab_vars: dict[str, str] = {}
        self.targets: dict[str, Target] = {}
        self.network: Network | None = None
        self.opened_network: OpenNetwork | None = None
        self.probes: list[Probe] = []
        self.notes: list[str] = []
        self.monitor: Monitor | None = None
        self.target_facts: dict[str, Any] = {}
        self.containers: dict[str, ContainerTarget] = {}
        self.sites: dict[str, list[Target]] = {}
        self.run_id = ""
        self._abortable = False  # a history failure may end the drill (inside `interruptible`)

    def run(self) -> RunResult:
        clock = Clock.now()
        run_id = f"{utc_basic(clock.wall_ns)}-{self.scenario.name}"
        private_dir(self.options.state_dir or state_dir())  # journals and locks: 0700, ours
        refuse_if_orphaned(self.options.state_dir)
        # Container targets are found and checked against the allow-list before anything is
        # started: a refusal is an input error, with no run to record.
        config_file = config_path(self.options.config)
        self.key = signing_key(self.options.reports_dir, config_file)  # refused before a change
        config = load_config(config_file)
        check_hosts(self.loaded, config, config_file)
        self.containers = container_targets(self.scenario, self.loaded, config, config_file)
        for target in self.containers.values():
            self.target_facts[target.name] = target.describe()
        keys = target_keys(self.scenario, self.containers.values())
        self.locks = TargetLocks(
            keys, self.scenario.name, self.options.state_dir, self.options.store
        )
        self.locks.acquire()  # before anything is touched; Locked names the holder
        try:
            return self._run_locked(run_id, clock)
        finally:
            self.locks.release()

    def _run_locked(self, run_id: str, clock: Clock) -> RunResult:
        # The history file, created exclusively, reserves the run id.
        run_id, log = open_history(self.options.reports_dir, run_id, clock, self.redactor.text)
        log.on_failure = self._history_failed
        self.run_id = run_id
        self.redactor.keep(run_id)  # a secret inside the run id must not mask it anywhere
        self.journal = Journal(run_id, self.scenario.name, self.options.state_dir)
        record_path = self.options.reports_dir / f"{run_id}.json"
        self.journal.append(record_on_crash(record_path, self.loaded, clock.wall_ns, self.key))
        for entry in self.locks.journal_entries():  # leases `drills recover` releases
            self.journal.append(entry)
        phases: dict[str, float] = {}
        error: str | None = None
        interrupted: str | None = None
        aborted: str | None = None
        mark = time.monotonic()
        try:
            with interruptible():
                self._abortable = True
                try:
                    scenario = self._set_up(run_id, log)
                    phases["setup"] = time.monotonic() - mark
                    mark = time.monotonic()
                    self._drill(scenario, log)
                finally:
                    with deferred():
                        self._abortable = False
                        self._tear_down(log, phases, mark)
        except Interrupted as exc:
            interrupted = exc.signame
            error = str(exc)
        except Aborted as exc:
            aborted = exc.condition
        except DrillsError as exc:
            error = str(exc)
        except Exception as exc:  # a bug: still clean up (done above) and record it
            with contextlib.suppress(OSError):
                sys.stderr.write(self.redactor.text(traceback.format_exc()))
            error = f"internal error: {exc!r}"
        finally:
            log.close()  # fsynced before the record pins its hash
        if log.failure is not None:  # the history is incomplete: the drill cannot be judged
            error, aborted = "; ".join(filter(None, [log.failure, error])), None
        return self._conclude(log, clock, phases, error, aborted, interrupted)

    def _history_failed(self, reason: str) -> None:
        """From any thread: a history write failed; end the drill (it cannot be judged)."""
        self.view.message(reason)
        if self._abortable:
            abort(reason)

    def _conclude(
        self,
        log: HistoryLog,
        clock: Clock,
        phases: dict[str, float],
        error: str | None,
        aborted: str | None,
        interrupted: str | None,
    ) -> RunResult:
        try:  # read back while the journal still stands: a drill killed here gets a record
            history = log.read()
        except RecordError as exc:  # no sample can be trusted: no figure is reported
            history, error = History(clock=clock), "; ".join(filter(None, [error, str(exc)]))
        if self.notes:
            self.notes.append(f"crash journal kept for `drills recover`: {self.journal.path}")
        elif self.options.keep_lab:
            self.view.message("the kept lab is journalled: `drills recover` removes it")
        else:
            self.journal.close()  # everything was undone: nothing to recover
        config = check_config(self.scenario, self.loaded.level)
        if self.notes:
            error = "; ".join([error, *self.notes] if error else self.notes)
        result = check(history, config)
        info = RunInfo(
            run_id=self.run_id,
            scenario_name=self.scenario.name,
            scenario_file=str(self.loaded.path),
            scenario_sha256=self.loaded.sha256,
            description=self.scenario.description.strip(),
            started_wall_ns=clock.wall_ns,
            finished_wall_ns=time.time_ns(),
            phases_s=phases,
            lab=self.lab_facts,
            targets=self.target_facts,
            error=error,
            aborted=aborted,
            participants=everyone(self.scenario.participants, self.options.participants),
            store=self.options.store.display if self.options.store else None,
        )
        history_path = self.options.reports_dir / f"{self.run_id}.history.jsonl"
        record = build_record(info, history, config, result, history_path.name)
        record_path = self.options.reports_dir / f"{self.run_id}.json"
        unwritten = None
        try:
            record = write_record(record_path, record, self.redactor.deep, self.key)
        except OSError as exc:  # a full disk: the verdict is still printed, exit 2
            unwritten = f"run record not written: cannot write {record_path}: {os_error_text(exc)}"
            record = RunRecord.model_validate(self.redactor.deep(record.data()))
        return RunResult(
            record, record_path, history_path, interrupted, self.notes, aborted, unwritten
        )

    def _set_up(self, run_id: str, log: HistoryLog) -> Scenario:
        scenario = self.scenario
        lab_targets: dict[str, Target] = {}
        if scenario.lab is not None:
            self.view.set_step(f"starting lab {scenario.lab.kind}")
            self.lab = LABS[scenario.lab.kind](scenario.lab, self.view.message, log.add_event)
            self.lab.attach(self.journal.append, run_id, scenario.engine, scenario.engines)
            handle = self.lab.start()
            self.network = handle.network
            self.lab_facts = handle.facts
            self.lab_vars = handle.variables
            lab_targets = handle.targets
            self.sites = {
                site: [handle.targets[node] for node in nodes]
                for site, nodes in handle.sites.items()
            }
            # Fill ${lab.*} with the real values; the file was fully validated before.
            reloaded = load_scenario(self.loaded.path, handle.variables, self.options.config)
            self.redactor.add(reloaded.secrets)  # a ${file:...} may have changed meanwhile
            scenario = reloaded.scenario
        if scenario.network is not None:
            self.opened_network = OpenNetwork(scenario.network, log.add_event, self.journal.append)
            self.network = self.opened_network.open()
            self.view.message(f"network: links {', '.join(scenario.network.links)}")
        self.targets = scenario_targets(scenario, lab_targets, self.containers)
        token = f"{run_id}-{uuid.uuid4().hex[:8]}"
        probes: list[Probe] = []
        for name, cfg in scenario.probes.items():
            probe = PROBES[cfg.kind](name, cfg, token)
            probe.prepare()
            probes.append(probe)
        self.probes = probes
        if self.lab is not None:
            self.lab.before_steps()
        return scenario

    def _drill(self, scenario: Scenario, log: HistoryLog) -> None:
        clock = log.history.clock
        self.runners = [probe_runner(p, log, clock) for p in self.probes]
        start_all(self.runners)
        self.view.watch(self.runners)
        self._watch_stop_conditions(scenario)
        ctx = StepContext(
            targets=self.targets,
            probes={r.name: r for r in self.runners},
            reverts=self.reverts,
            variables=self.lab_vars,
            stable=scenario.stable,
            progress=self.view.message,
            network=self.network,
            journal=self.journal.append,
            run_id=self.run_id,
            sites=self.sites,
            operator=Operator.for_run(self.run_id, self.journal, self.view, self.options),
        )
        for index, step in enumerate(scenario.steps):
            self._step(index, len(scenario.steps), step, ctx, log)
        with deferred():  # a signal now must not leave a fault half reverted
            self._stop_probes()
            self._revert()
        self._final_read(scenario, log)

    def _watch_stop_conditions(self, scenario: Scenario) -> None:
        states = {r.name: r.state for r in self.runners}
        checks = stop_conditions(scenario, states, self.options.max_downtime)
        self.monitor = Monitor(checks, self.view.message)
        self.monitor.start()

    def _step(
        self, index: int, total: int, step: StepConfig, ctx: StepContext, log: HistoryLog
    ) -> None:
        description = step.describe()
        self.view.set_step(f"step {index + 1}/{total}: {description}")
        start = time.monotonic_ns()
        ctx.resolved.clear()
        ctx.facts = {}

        def record(ok: bool, detail: str) -> None:
            end = time.monotonic_ns()
            if ctx.resolved:  # the record names the node a role target was at that moment
                detail = f"{ctx.resolutions()}: {detail}" if detail else ctx.resolutions()
            event = StepEvent(
                index,
                step.kind,
                description,
                start,
                end,
                step.starts_rto_clock,
                ok,
                detail,
                step.name or "",
                ctx.facts,
            )
            log.add_step(event)
            if step.name:
                ctx.done[step.name] = event

        try:
            detail = step.run(ctx)
        except (Interrupted, Aborted):
            record(False, "interrupted")
            raise
        except DrillsError as exc:  # StepError, TargetError, EngineError...
            record(False, str(exc))
            raise StepError(f"step {index + 1} ({description}) failed: {exc}") from exc
        except BaseException:
            record(False, "interrupted")
            raise
        record(True, detail)
        if detail:
            self.view.message(f"  {detail}")

    def _stop_probes(self) -> None:
        try:
            if self.monitor is not None:
                self.monitor.stop()  # no stop condition may fire once the drill is over
            self.view.close()
        finally:
            stop_all(self.runners)
            self.runners = []

    def _revert(self) -> None:
        for problem in self.reverts.revert_all(self.view.message):
            self.notes.append(problem)
            self.view.message(problem)

    def _final_read(self, scenario: Scenario, log: HistoryLog) -> None:
        if scenario.write_probe is None:
            return
        probe = next(p for p in self.probes if p.name == scenario.write_probe)
        assert isinstance(probe, WriteProbe)
        self.view.set_step(f"settle {scenario.settle:g}s, then read back every write")
        time.sleep(scenario.settle)
        try:
            counts = probe.final_read()
            log.add_final_read(FinalRead(probe.name, time.monotonic_ns(), True, counts))
            self.view.message(f"final read: {len(counts)} of this run's writes found")
        except ProbeError as exc:
            log.add_final_read(FinalRead(probe.name, time.monotonic_ns(), False, detail=str(exc)))
            self.view.message(str(exc))

    def _tear_down(self, log: HistoryLog, phases: dict[str, float], mark: float) -> None:
        if "setup" in phases:
            phases["drill"] = time.monotonic() - mark
        else:
            phases["setup"] = time.monotonic() - mark
        mark = time.monotonic()
        # Each action on its own: one that fails must not leave the next undone.
        actions = [
            ("stop probes", self._stop_probes),
            ("revert faults", self._revert),
            ("close network links", self._close_network),
            ("remove the lab", self._remove_lab),
            ("close the live view", self.view.close),
        ]
        for what, action in actions:
            try:
                action()
            except Exception as exc:
                self.notes.append(f"could not {what}: {exc!r}")
        phases["teardown"] = time.monotonic() - mark

    def _close_network(self) -> None:
        if self.opened_network is not None:
            self.opened_network.close()

    def _remove_lab(self) -> None:
        if self.lab is None:
            return
        if self.options.keep_lab:
            self.view.message(self.lab.keep())
        else:
            self.view.set_step("removing lab")
            self.lab.stop()


def run_drill(path: Path, options: RunOptions) -> RunResult:
    loaded = load_scenario(path, config=options.config)
    return Drill(loaded, options).run()
