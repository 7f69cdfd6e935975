"""`badia batch`: run an experiment's design x replicates on any executor into a results folder.

    badia batch EXPERIMENT [--out DIR] [--workers N] [--scheduler ADDRESS] [--force-new]

The parent process expands the design, opens (or resumes) the results store and keeps a bounded
window of runs in flight on a `concurrent.futures.Executor`: local worker processes by default
(a "forkserver" or "spawn" pool, so no thread of the parent is ever forked), or a running Dask
cluster's executor with `--scheduler tcp://host:8786`. Each worker keeps the parsed scenario of
a design point cached (and the terrain module caches the terrain), runs
`sim.engine.run.run_scenario`,
and sends back the finished run as the compressed bytes of its Parquet part; the parent only
writes those bytes to disk, atomically. A run that raises becomes a failure record; the batch
goes on.

Exit status (`run_batch_command` / `python -m sim.experiments.batch`):
    0  every run of the design finished
    1  bad input: an invalid experiment file, or a results folder made by another experiment
    3  some runs failed (see DIR/failures/); rerun the same command to retry just those
    4  the batch stopped early (a worker process died, the Dask scheduler was lost, or a part
       could not be written); rerun to resume
    130 interrupted (Ctrl-C, SIGINT or SIGTERM: the local workers are terminated, the finished
        parts kept); rerun to resume

A batch holds an exclusive lock on the results folder (`DIR/.lock`) while it runs; a second
batch on the same folder stops at once with one line (exit status 1) and writes nothing.

One module, about 700 lines, on purpose: the worker side, the store it opens, the executor's
window of runs in flight and the signals that stop it share the batch's state and its exit
statuses; split, the rules of a crash-safe, resumable batch would be spread over files.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sim.engine.tracks import TrackConfig
from sim.errors import BatchError, ResultsError, ScenarioError, did_you_mean
from sim.experiments.design import (
    Design,
    LoadedExperiment,
    describe,
    expand_design,
    fingerprint,
    load_experiment,
    plan_runs,
    point_overrides,
)
from sim.experiments.results import ensure_flat_tables, remove_flat_tables
from sim.experiments.single import run_files
from sim.experiments.store import (
    FAILURES,
    LOCK,
    MANIFEST,
    PARTS,
    STORE_FORMAT,
    ResultsStore,
    RunIds,
    atomic_write_json,
    code_version,
    encode_part,
    lock_folder,
    looks_like_store,
    package_versions,
    part_ids,
    read_manifest,
    set_aside,
)

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_RUNS_FAILED = 3
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130

#: A run function with the signature of `sim.engine.run.run_scenario(scenario, *, seed, days)`.
Runner = Callable[..., Any]


# --------------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """What every run of a batch shares; sent along with each task (a few KB of YAML)."""

    scenario_yaml: str                 # the resolved base scenario (experiment `set` applied)
    scenario_source: str               # the base scenario file, for error messages
    days: float | None                 # run length (None: the scenario's)
    keep: dict[str, Any]               # KeepSpec as a dict


@dataclass(frozen=True)
class RunTask:
    """One run: who it is and the factor values of its design point."""

    ids: RunIds
    overrides: tuple[tuple[str, Any], ...]


@dataclass
class RunOutcome:
    """What a worker sends back: the finished part's bytes, or a failure record."""

    ids: RunIds
    part: bytes | None = None
    failure: dict[str, Any] | None = None
    missing_metrics: tuple[str, ...] = ()   # kept names this run did not report
    seconds: float = 0.0
    replay: dict[str, bytes] | None = None  # keep.tracks: the run's replay files by name


@functools.lru_cache(maxsize=32)
def _scenario_for(scenario_yaml: str, overrides_json: str, source: str) -> Any:
    """The validated scenario of one design point, parsed once per worker process.

    Keyed by the resolved base scenario's YAML and the point's overrides, so replicates of a
    point (and every run of a factor-free experiment) reuse one parse."""
    import yaml

    from sim.scenario.loading import parse_scenario
    from sim.scenario.overrides import apply_overrides

    data = yaml.safe_load(scenario_yaml)
    overrides = [tuple(o) for o in json.loads(overrides_json)]
    prov: dict = {(): source}
    if overrides:
        data = apply_overrides(data, overrides, source, prov)
    return parse_scenario(data, source, _provenance=prov)


def _select(names: list[str] | str, available: list[str]) -> tuple[list[str], list[str]]:
    """(names to keep that exist, kept names that do not) for a keep list or all/none."""
    if names == "all":
        return list(available), []
    if names == "none":
        return [], []
    have = set(available)
    return [n for n in names if n in have], [n for n in names if n not in have]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ScenarioError):
        return "; ".join(exc.messages)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def execute_run(ctx: RunContext, task: RunTask, runner: Runner | None = None) -> RunOutcome:
    """Run one task and return its Parquet part (or its failure record). Never raises for a
    failing run: the error, its one-line message and the traceback travel back as data."""
    t0 = time.perf_counter()
    ids = task.ids
    try:
        scenario = _scenario_for(ctx.scenario_yaml, json.dumps(task.overrides, default=str),
                                 ctx.scenario_source)
        if runner is None:
            from sim.engine.run import run_scenario as runner
        # a fresh copy per run: the cached parse must not carry state from one run to the next
        keep = ctx.keep
        # hourly tracks only when asked: the runner's other arguments stay as they were
        extra = {"tracks": TrackConfig()} if keep.get("tracks") else {}
        result = runner(scenario.model_copy(deep=True), seed=ids.seed, days=ctx.days, **extra)
        summary = dict(result.summary)
        s_names, s_missing = _select(keep["summary"], list(summary))
        summary = {k: summary.get(k) for k in s_names}
        summary.update(dict.fromkeys(s_missing, float("nan")))
        daily = result.daily
        d_names, d_missing = _select(keep["daily"], [c for c in daily.columns if c != "day"])
        if keep["daily"] == "none":
            daily = None
        else:
            daily = daily[["day", *d_names]].copy()
            for name in d_missing:
                daily[name] = float("nan")
        events = result.events
        if keep["events"] == "none":
            events = []
        elif keep["events"] != "all":
            wanted = set(keep["events"])
            events = [e for e in events if e.get("type") in wanted]
        part = encode_part(ids, summary, daily, events)
        replay = None
        if keep.get("tracks") and result.tracks is not None:
            replay = {**run_files(result), **result.tracks.files()}
        missing = [f"summary: {n!r}{did_you_mean(n, result.summary)}" for n in s_missing]
        missing += [f"daily: {n!r}{did_you_mean(n, result.daily.columns)}" for n in d_missing]
        return RunOutcome(ids, part=part, seconds=time.perf_counter() - t0,
                          missing_metrics=tuple(missing), replay=replay)
    except Exception as exc:   # a failing run is data, not the end of the batch
        return RunOutcome(ids, failure=_failure_record(ids, task.overrides, exc),
                          seconds=time.perf_counter() - t0)


def _failure_record(ids: RunIds, overrides: tuple[tuple[str, Any], ...],
                    exc: BaseException) -> dict[str, Any]:
    return {
        "run_id": ids.run_id, "point_id": ids.point_id, "replicate": ids.replicate,
        "seed": ids.seed, "factors": {p: v for p, v in overrides},
        "error_type": type(exc).__name__, "error": _one_line(exc),
        "messages": list(exc.messages) if isinstance(exc, ScenarioError) else [],
        "traceback": "".join(traceback.format_exception(exc)),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------
# Parent side: the store
# --------------------------------------------------------------------------------------------


def build_manifest(exp: LoadedExperiment, design: Design) -> dict[str, Any]:
    """The manifest of a new store: experiment, base scenario, design, runs, versions."""
    runs = list(plan_runs(design, exp.spec.replicates, exp.spec.seed))
    return {
        "format": STORE_FORMAT,
        "name": exp.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": fingerprint(exp, design),
        "experiment": exp.spec.model_dump(mode="json"),
        "experiment_file": exp.source,
        "experiment_text": exp.text,
        "base_scenario": {"file": exp.scenario_source, "yaml": exp.scenario_yaml},
        "design": design.to_json(),
        "runs": {"columns": ["run_id", "point_id", "replicate", "seed"],
                 "rows": [[r.run_id, r.point_id, r.replicate, r.seed] for r in runs]},
        "seeds": "numpy.random.SeedSequence(experiment.seed, spawn_key=(point_id, replicate))"
                 ".generate_state(1, numpy.uint64)[0] >> 1",
        "code": code_version(),
        "packages": package_versions(),
    }


def _what_changed(old: dict[str, Any], exp: LoadedExperiment, design: Design) -> list[str]:
    old_exp = dict(old.get("experiment") or {})
    new_exp = exp.spec.model_dump(mode="json")
    changed = [k for k in sorted(set(old_exp) | set(new_exp))
               if k not in ("description", "scenario") and old_exp.get(k) != new_exp.get(k)]
    if (old.get("base_scenario") or {}).get("yaml") != exp.scenario_yaml:
        changed.append("base scenario")
    if not changed and (old.get("design") or {}).get("points") != design.to_json()["points"]:
        changed.append("design points")
    return changed or ["format"]


def _aside_name(out: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = out.with_name(f"{out.name}.old-{stamp}")
    n = 1
    while aside.exists():
        aside = out.with_name(f"{out.name}.old-{stamp}-{n}")
        n += 1
    return aside


def _has_content(out: Path) -> bool:
    """`out` exists and is a file, or a folder holding anything besides the lock file."""
    return out.exists() and (not out.is_dir() or any(p.name != LOCK for p in out.iterdir()))


def _refuse_foreign(out: Path) -> None:
    """BatchError if `out` holds something other than a results store (checked before the
    lock is taken, so a folder of someone else's files gets no `.lock` either)."""
    if not _has_content(out):
        return
    if not out.is_dir():
        raise BatchError(f"{out}: exists and is not a folder; choose another --out")
    try:
        read_manifest(out)
    except ResultsError as exc:
        if looks_like_store(out):
            return   # a store whose manifest is lost or damaged: `open_store` rebuilds it
        raise BatchError(f"{exc}; choose another --out, or --force-new to move it aside "
                         f"and start a fresh store") from None


def open_store(exp: LoadedExperiment, design: Design, out: Path, force_new: bool = False,
               locks: contextlib.ExitStack | None = None) -> tuple[ResultsStore, list[str]]:
    """Create the results store at `out`, or reopen it to resume.

    An existing store of a different experiment (or base scenario) is refused with a
    `BatchError` unless `force_new`, which moves the old folder to `<out>.old-<timestamp>`
    (results are never deleted) and, given `locks`, locks the new folder in it before writing.
    Returns the store and notes to print."""
    notes: list[str] = []
    out = Path(out)
    exists = _has_content(out)
    if exists and not force_new:
        if not out.is_dir():
            raise BatchError(f"{out}: exists and is not a folder; choose another --out")
        try:
            old = read_manifest(out)
        except ResultsError as exc:
            if not looks_like_store(out):
                raise BatchError(f"{exc}; choose another --out, or --force-new to move it "
                                 f"aside and start a fresh store") from None
            return _rebuild_manifest(exp, design, out, str(exc))
        if old.get("fingerprint") != fingerprint(exp, design):
            changed = ", ".join(_what_changed(old, exp, design))
            raise BatchError(
                f"{out}: holds results of a different experiment ({old.get('name')!r} from "
                f"{old.get('experiment_file')}; changed: {changed}); use --force-new to move "
                f"it to {out.name}.old-<timestamp> and start afresh, or choose another --out")
        store = ResultsStore(out, old)
        was, now = old.get("code") or {}, code_version()
        if (was.get("sim"), was.get("git_commit")) != (now["sim"], now["git_commit"]):
            notes.append(f"note: {out} was started by another code version (sim "
                         f"{was.get('sim')}, commit {was.get('git_commit')}); resuming anyway")
        return store, notes
    if exists:
        aside = _aside_name(out)
        os.replace(out, aside)
        notes.append(f"moved the old {out} to {aside}")
        if locks is not None:   # the lock held so far moved with the old folder
            locks.enter_context(lock_folder(out))
    return ResultsStore.create(out, build_manifest(exp, design)), notes


def _rebuild_manifest(exp: LoadedExperiment, design: Design, out: Path, why: str
                      ) -> tuple[ResultsStore, list[str]]:
    """A store whose manifest is missing, unreadable or of the wrong shape (`why`), reopened
    with a manifest rebuilt from the experiment file: every readable part must hold the run
    this experiment plans under its name (the same point, replicate and seed), else the folder
    is another experiment's and is refused with nothing changed. Unreadable parts are left for
    the resume check (`finished_run_ids`), which sets them aside and redoes them. A damaged
    manifest is kept as `manifest.json.bad-<time>`."""
    mf = out / MANIFEST
    reason = why.removeprefix(f"{mf}: ") if mf.exists() else "missing"
    new = build_manifest(exp, design)
    old: Any = None
    with contextlib.suppress(OSError, ValueError):
        old = json.loads(mf.read_text())
    if isinstance(old, dict) and isinstance(old.get("format"), int) \
            and old["format"] != STORE_FORMAT:   # not damaged: another version's store
        raise BatchError(f"{mf}: a results store of format {old['format']} (this badia "
                         f"writes format {STORE_FORMAT}); choose another --out")
    if isinstance(old, dict) and isinstance(old.get("fingerprint"), str) \
            and old["fingerprint"] != new["fingerprint"]:
        raise BatchError(f"{mf}: damaged ({reason}), and it names another experiment "
                         f"({old.get('name')!r}); choose another --out, or --force-new to "
                         f"move it aside and start afresh")
    planned = {r.run_id: r for r in plan_runs(design, exp.spec.replicates, exp.spec.seed)}
    parts_dir = out / PARTS
    n_parts = 0
    for part in sorted(parts_dir.glob("run-*.parquet")):
        try:
            ids = part_ids(part)
        except Exception:   # unreadable: the resume check moves it aside and redoes the run
            continue
        if planned.get(ids.run_id) != ids or part.name != f"run-{ids.run_id:06d}.parquet":
            raise BatchError(
                f"{mf}: {reason}, and {part} holds run {ids.run_id} (point "
                f"{ids.point_id}, replicate {ids.replicate}, seed {ids.seed}) that "
                f"{exp.source} does not plan: the folder is another experiment's; choose "
                f"another --out, or --force-new to move it aside and start afresh")
        n_parts += 1
    (out / FAILURES).mkdir(exist_ok=True)
    kept = ""
    if mf.exists():
        kept = f" (the damaged one kept as {set_aside(mf).name})"
    atomic_write_json(mf, new)
    return ResultsStore(out, new), [
        f"note: {mf} was {reason}; rebuilt it from {exp.source} and the {n_parts} intact "
        f"part(s){kept}"]


# --------------------------------------------------------------------------------------------
# Parent side: the run loop
# --------------------------------------------------------------------------------------------


@dataclass
class BatchReport:
    """What a batch did. `exit_code` follows the module docstring."""

    out: Path
    total: int                       # runs in the design
    already_done: int                # finished before this invocation
    completed: int = 0               # finished now
    failed: list[int] = field(default_factory=list)    # run ids that raised now
    not_run: int = 0                 # left undone (stopped early)
    stopped: str | None = None       # why the batch stopped early
    interrupted: bool = False
    elapsed_s: float = 0.0
    missing_metrics: set[str] = field(default_factory=set)
    flat_tables: bool = False        # runs/daily/events.parquet match the parts at the end

    @property
    def exit_code(self) -> int:
        """0 all done, 3 some runs failed, 4 stopped early, 130 interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.stopped:
            return EXIT_INCOMPLETE
        return EXIT_RUNS_FAILED if self.failed else EXIT_OK


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


def local_executor(workers: int) -> ProcessPoolExecutor:
    """A process pool that never forks the (possibly threaded) parent: forkserver where the
    platform has it, else spawn. The start method is chosen per pool, not set globally."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))


def stop_local_workers(executor: ProcessPoolExecutor) -> None:
    """Cancel the pool's pending runs and terminate its worker processes now (the runs in
    progress are lost; their parts were never written, so a rerun does them again)."""
    procs = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            if proc.is_alive():
                proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


@contextlib.contextmanager
def _interrupt_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into KeyboardInterrupt in the batch parent, once: the run
    loop then stops, the local workers are terminated and the folder is left resumable."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if not fired:          # a second signal must not break the clean-up of the first
            fired.append(signum)
            raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)


def _folder_error(out: Path, exc: OSError) -> BatchError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out) else ""
    return BatchError(f"{out}: cannot write the results folder: "
                      f"{exc.strerror or type(exc).__name__}{where}")


@dataclass
class _Pool:
    """The executor a batch runs on, how many runs it can take now, and what to say when it
    stops under the batch."""

    executor: Executor
    slots: Callable[[], int]           # parallel slots now (a cluster may grow or shrink)
    what: str                          # e.g. "2 local worker process(es)"
    broken: Callable[[BaseException], str]   # why the executor stopped, one line


#: Seconds between two reads of a Dask cluster's size (each read is a scheduler round trip).
CLUSTER_SIZE_EVERY_S = 1.0


def _cluster_slots(client: Any) -> Callable[[], int]:
    """The cluster's worker threads now, read at most every `CLUSTER_SIZE_EVERY_S`: an
    adaptive cluster (dask-jobqueue, `cluster.adapt`) adds workers after the batch starts."""
    last = [0.0, max(1, sum(client.nthreads().values()))]

    def slots() -> int:
        now = time.monotonic()
        if now - last[0] >= CLUSTER_SIZE_EVERY_S:
            last[0] = now
            with contextlib.suppress(Exception):   # a lost scheduler shows in the futures
                last[1] = max(1, sum(client.nthreads().values()))
        return int(last[1])

    return slots


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Dask's client logs a traceback when it loses the scheduler; the batch says it in one
    line instead (`_Pool.broken`), so the loggers that can print it are silenced while the
    client lives: distributed's own, and tornado's and asyncio's, which report a gather that
    failed in the client's event loop ("Exception in callback ...") from the loop's thread at
    a moment of their own choosing."""
    import logging

    import distributed  # noqa: F401  (its import sets its loggers' levels: quiet them after)

    names = ["distributed", "tornado", "asyncio",
             *(n for n in list(logging.root.manager.loggerDict)
               if n.startswith(("distributed.", "tornado.")))]
    old = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for n, level in old.items():
            logging.getLogger(n).setLevel(level)


def _local_broken(exc: BaseException) -> str:
    return (f"the executor stopped ({_one_line(exc)}); a worker process probably died (out "
            f"of memory?)")


def _dask_pool(scheduler: str) -> Iterator[_Pool]:
    """The pool of a Dask cluster at `scheduler` (one item; closed when the caller resumes)."""
    from distributed import Client

    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise BatchError(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                         f"({_one_line(exc)})") from None

    def lost(exc: BaseException) -> str:
        if getattr(client, "status", "") == "running":   # connected: the cluster said no
            return (f"the Dask cluster {scheduler} cancelled a run ({_one_line(exc)}); "
                    f"the finished runs' parts are kept")
        return (f"lost the Dask scheduler {scheduler} (it stopped answering); the "
                f"finished runs' parts are kept")

    try:
        slots = _cluster_slots(client)
        executor = client.get_executor(pure=False)
        try:
            yield _Pool(executor, slots, f"Dask cluster {scheduler} ({slots()} worker threads "
                        f"now; runs in flight follow its size)", lost)
        finally:
            executor.shutdown(wait=False)
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=5)


@contextlib.contextmanager
def _executor_for(workers: int | None, scheduler: str | None) -> Iterator[_Pool]:
    """The pool to run on, shut down on exit."""
    if scheduler:
        # one quiet span for the client's whole life: a lost scheduler's errors surface in the
        # client's loop thread until the client is closed, not only while runs are awaited
        with _quiet_dask_logs():
            yield from _dask_pool(scheduler)
        return
    n = workers or default_workers()
    executor = local_executor(n)
    try:
        yield _Pool(executor, lambda: n, f"{n} local worker process(es)", _local_broken)
    except BaseException:       # interrupted (or broken): do not wait for the runs in progress
        stop_local_workers(executor)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def run_batch(
    experiment: str | Path | LoadedExperiment,
    out: str | Path | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: Executor | None = None,
    force_new: bool = False,
    runner: Runner | None = None,
    progress: bool = True,
    window: int | None = None,
    log: Callable[[str], None] | None = None,
) -> BatchReport:
    """Run every missing run of an experiment into the results store at `out`.

    Args:
        experiment: an experiment file, or one already loaded.
        out: the results folder (default `results/<experiment name>`).
        workers: local worker processes (default: the cores available).
        scheduler: a Dask scheduler address; runs go to that cluster instead.
        executor: any `concurrent.futures.Executor` to use as is (not shut down here).
        force_new: move an existing store aside and start a fresh one.
        runner: the run function (default `sim.engine.run.run_scenario`); must be picklable.
        progress: show a tqdm progress bar on stderr.
        window: runs in flight at once (default 2 per worker, at least 4), which bounds
            what the parent holds in memory.
        log: where to print notes (default: stderr).

    Raises `ExperimentError`/`ScenarioError` for a bad experiment and `BatchError` for a store
    that cannot be used (another experiment's, locked by another batch, not writable); failing
    runs do not raise (see `BatchReport.failed`). SIGTERM and SIGINT stop the batch as
    interrupted (the local workers are terminated; see `BatchReport.interrupted`).
    """
    say = log or (lambda line: print(line, file=sys.stderr))
    exp = experiment if isinstance(experiment, LoadedExperiment) else load_experiment(experiment)
    design = expand_design(exp)
    out_path = Path(out) if out is not None else Path("results") / exp.name
    with _interrupt_on_signals(), contextlib.ExitStack() as locks:
        try:
            if not force_new:
                _refuse_foreign(out_path)
            if not (force_new and out_path.exists() and not out_path.is_dir()):
                locks.enter_context(lock_folder(out_path))   # (a file is moved aside first)
            store, notes = open_store(exp, design, out_path, force_new=force_new, locks=locks)
            for note in notes:
                say(note)
            store.clear_temporary()
            done, bad = store.finished_run_ids()
        except OSError as exc:
            raise _folder_error(out_path, exc) from None
        for aside, why in bad:
            say(f"note: {aside.parent / aside.name.split('.bad-')[0]} was bad ({why}); moved "
                f"to {aside.name} and the run will be done again")
        return _run_locked(exp, design, out_path, store, done, workers=workers,
                           scheduler=scheduler, executor=executor, runner=runner,
                           progress=progress, window=window, say=say)


def _run_locked(exp: LoadedExperiment, design: Design, out_path: Path, store: ResultsStore,
                done: set[int], *, workers: int | None, scheduler: str | None,
                executor: Executor | None, runner: Runner | None, progress: bool,
                window: int | None, say: Callable[[str], None]) -> BatchReport:
    """The rest of `run_batch`, with the folder locked."""
    all_runs = list(plan_runs(design, exp.spec.replicates, exp.spec.seed))
    todo = deque(RunTask(r, point_overrides(design, r.point_id))
                 for r in all_runs if r.run_id not in done)
    report = BatchReport(out=out_path, total=len(all_runs), already_done=len(done))
    ctx = RunContext(scenario_yaml=exp.scenario_yaml, scenario_source=exp.scenario_source,
                     days=exp.spec.days, keep=exp.spec.keep.model_dump(mode="json"))
    t0 = time.perf_counter()
    if not todo:
        _finish_tables(store, report, say)
        report.elapsed_s = time.perf_counter() - t0
        return report
    # the parts are about to change: a flat table that exists must match them
    remove_flat_tables(out_path)
    if executor is not None:
        say(f"{describe(exp, design)}; {len(todo)} to run -> {out_path}")
        size = max(4, window or 4)
        _drive(_Pool(executor, lambda: size, "", _local_broken), lambda: size, ctx, todo,
               runner, store, report, progress, exp.name, say)
    else:
        with _executor_for(workers, scheduler) as pool:
            say(f"{describe(exp, design)}; {len(todo)} to run on {pool.what} -> {out_path}")
            # 2 runs per slot (at least 4), re-read as the batch goes: a cluster that grows
            # gets proportionally more runs in flight
            in_flight = (lambda: window) if window else (lambda: max(4, 2 * pool.slots()))
            _drive(pool, in_flight, ctx, todo, runner, store, report, progress, exp.name,
                   say)
            if report.interrupted and isinstance(pool.executor, ProcessPoolExecutor):
                stop_local_workers(pool.executor)
    _finish_tables(store, report, say)
    report.elapsed_s = time.perf_counter() - t0
    return report


def _finish_tables(store: ResultsStore, report: BatchReport, say: Callable[[str], None]) -> None:
    """Once every run has a part or a failure record, write the flat tables beside the parts
    (`sim.experiments.tables`); a batch that stopped early leaves none. A table that cannot
    be written is a note, not a failed batch: `badia report` rebuilds it."""
    if report.interrupted or report.stopped:
        return
    try:
        ensure_flat_tables(store.path)
        report.flat_tables = True
    except (ResultsError, OSError) as exc:
        say(f"note: flat tables (runs/daily/events.parquet) not written: {exc}; `badia "
            f"report` or sim.experiments.results.ensure_flat_tables rebuilds them")


def _drive(pool: _Pool, window: Callable[[], int], ctx: RunContext, todo: deque[RunTask],
           runner: Runner | None, store: ResultsStore, report: BatchReport, progress: bool,
           name: str, say: Callable[[str], None]) -> None:
    """Keep at most `window()` runs in flight (re-read after every wait, which returns at
    least every `CLUSTER_SIZE_EVERY_S` seconds); store each outcome as it arrives."""
    from tqdm.auto import tqdm

    bar = tqdm(total=report.total, initial=report.already_done, desc=name, unit="run",
               disable=not progress, dynamic_ncols=True, mininterval=0.5, smoothing=0.1)
    in_flight: dict[Future[RunOutcome], RunTask] = {}
    warned_missing = False
    try:
        while todo or in_flight:
            limit = window()
            while todo and len(in_flight) < limit:
                task = todo.popleft()
                in_flight[pool.executor.submit(execute_run, ctx, task, runner)] = task
            finished, _ = wait(list(in_flight), timeout=CLUSTER_SIZE_EVERY_S,
                               return_when=FIRST_COMPLETED)
            for fut in finished:
                task = in_flight.pop(fut)
                try:
                    outcome = fut.result()
                except (BrokenProcessPool, CancelledError) as exc:
                    report.stopped = pool.broken(exc)
                    todo.appendleft(task)
                    raise _Stop from None
                except Exception as exc:   # the executor could not run the task at all
                    outcome = RunOutcome(task.ids, failure=_failure_record(
                        task.ids, task.overrides, exc))
                try:
                    if outcome.part is not None:
                        if outcome.replay:  # first: a stored part means a complete replay
                            store.write_replay(task.ids.run_id, outcome.replay)
                        store.write_part(task.ids.run_id, outcome.part)
                    else:
                        assert outcome.failure is not None
                        store.write_failure(task.ids.run_id, outcome.failure)
                except OSError as exc:   # disk full, folder gone or made read-only
                    report.stopped = f"cannot write to {store.path} ({exc})"
                    todo.appendleft(task)
                    raise _Stop from None
                if outcome.part is not None:
                    report.completed += 1
                    if outcome.missing_metrics:
                        report.missing_metrics.update(outcome.missing_metrics)
                        if not warned_missing:
                            warned_missing = True
                            say(f"warning: keep: run {task.ids.run_id} reported no metric "
                                f"{'; '.join(outcome.missing_metrics)} (stored as NaN)")
                else:
                    assert outcome.failure is not None
                    report.failed.append(task.ids.run_id)
                    if len(report.failed) == 1:
                        say(f"run {task.ids.run_id} failed: {outcome.failure['error']}")
                bar.update(1)
                bar.set_postfix(failed=len(report.failed), refresh=False)
    except _Stop:
        pass
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        for fut in in_flight:
            fut.cancel()
        report.not_run = len(todo) + len(in_flight)
        bar.close()


class _Stop(Exception):
    """Internal: leave the run loop (the executor broke)."""


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `badia batch`'s arguments to `parser`."""
    parser.add_argument("experiment", type=Path, help="experiment file (experiments/*.yaml)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="results folder (default: results/<experiment name>); rerun on "
                             "the same folder to resume")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes (default: all cores)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on a Dask cluster, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--force-new", action="store_true",
                        help="move an existing results folder to DIR.old-<timestamp> and "
                             "start afresh")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_batch_command(args: argparse.Namespace) -> int:
    """`badia batch`: run the experiment, print a summary; returns the exit status."""
    if args.workers is not None and args.workers < 1:
        print(f"badia batch: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.workers is not None and args.scheduler:
        print("badia batch: give --workers or --scheduler, not both", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        report = run_batch(args.experiment, args.out, workers=args.workers,
                           scheduler=args.scheduler, force_new=args.force_new,
                           progress=not getattr(args, "quiet", False))
    except ScenarioError as exc:      # includes ExperimentError
        for line in exc.messages:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
    except (BatchError, ResultsError) as exc:
        print(f"badia batch: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("badia batch: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    _print_summary(report)
    return report.exit_code


def _print_summary(r: BatchReport) -> None:
    have = r.already_done + r.completed
    line = (f"{r.out}: {have} of {r.total} runs stored ({r.completed} now, "
            f"{r.already_done} before) in {r.elapsed_s:.1f} s")
    if r.failed:
        line += f"; {len(r.failed)} failed (see {r.out / 'failures'})"
    if r.flat_tables:
        line += "; flat tables runs.parquet, daily.parquet, events.parquet"
    print(line)
    if r.failed:
        print(f"badia batch: {len(r.failed)} run(s) failed; fix the cause and rerun the same "
              f"command to retry them", file=sys.stderr)
    if r.stopped:
        print(f"badia batch: stopped early: {r.stopped}; {r.not_run} runs not done; rerun the "
              f"same command to resume", file=sys.stderr)
    if r.interrupted:
        print(f"badia batch: interrupted; {r.not_run} runs not done; rerun the same command "
              f"to resume", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.experiments.batch EXPERIMENT ...` (the same as `badia batch`)."""
    parser = argparse.ArgumentParser(prog="badia batch", description=__doc__.split("\n")[0])
    add_batch_arguments(parser)
    return run_batch_command(parser.parse_args(argv))


if __name__ == "__main__":
    # run the module's own copy, so workers unpickle `sim.experiments.batch.execute_run`,
    # not `__main__.`
    from sim.experiments.batch import main as _main

    sys.exit(_main())
