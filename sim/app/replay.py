"""A finished run, replayed from its files (``badia viz --replay RUN_DIR``): no re-simulation.

:class:`Replay` reads a ``badia run`` folder (``scenario.yaml``, ``events.jsonl``,
``daily.parquet`` and the tracks of :mod:`sim.engine.tracks`) once. :meth:`Replay.frame` gives,
for any recorded hour, a :class:`ReplayFrame`: an object with the attributes of a
:class:`~sim.engine.model.DesertModel` that the live app's drawing and text functions read
(force table, knowledge, units, events, hour), rebuilt from the stored arrays in a few
milliseconds, so the app's own :func:`~sim.app.map_frame.map_figure`,
:func:`~sim.app.status.event_lines` and the views draw it exactly as they draw a live run.
The static parts (terrain, clock, light, factions) come from a model built from the run's
``scenario.yaml`` and seed and never stepped.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.engine.tracks import FORMAT_VERSION, KNOWLEDGE_FILE, METADATA_KEY, TRACKS_FILE
from sim.errors import ReplayError, ScenarioError
from sim.rules.force import ForceTable
from sim.rules.knowledge import Knowledge
from sim.scenario.vocab import KINDS

RUN_FILES = ("scenario.yaml", "events.jsonl", "daily.parquet", TRACKS_FILE, KNOWLEDGE_FILE)
#: Largest events.jsonl read (a year of the busiest campaign writes about 10 MB).
MAX_EVENTS_BYTES = 200 * 1024 * 1024


@dataclass
class ReplayUnit:
    """What the drawing functions read of a unit (:class:`sim.engine.units.Unit`'s names)."""

    idx: int
    name: str
    faction: str
    kind: str
    row: int = 0
    col: int = 0
    attack_target: int | None = None
    alive: bool = False

    @property
    def rc(self) -> tuple[int, int]:
        return self.row, self.col


class ReplayFrame:
    """A recorded hour of a run, shaped like the :class:`DesertModel` the app draws: the
    changing state is this frame's own, anything else is read from the never-stepped model
    built from the run's scenario (terrain, spec, clock, light, factions)."""

    def __init__(self, base: Any, hour: int, force: ForceTable, knowledge: Knowledge,
                 units: list[ReplayUnit], events: list[dict]) -> None:
        self._base = base
        self.hour = hour
        self.force = force
        self.knowledge = knowledge
        self.units = units
        self.events = events
        self.running = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


def _fail(path: Path | str, what: str) -> ReplayError:
    return ReplayError(f"{path}: {what}")


def _read_tracks(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise _fail(path, f"not a readable Parquet file ({type(exc).__name__})") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise _fail(path, "not a badia track file (no badia.tracks metadata)")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise _fail(path, "not a badia track file (its metadata is not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise _fail(path, f"track format {meta.get('format') if isinstance(meta, dict) else '?'}"
                          f" is not {FORMAT_VERSION}: run the scenario again with this badia")
    cols = {name: table.column(name).to_numpy() for name in table.column_names}
    return meta, cols


class Replay:
    """A finished run read from ``folder`` (see :func:`open_replay` for the checks)."""

    def __init__(self, folder: Path) -> None:
        from sim.engine.model import DesertModel
        from sim.scenario.loading import load_scenario

        self.folder = folder
        missing = [name for name in RUN_FILES if not (folder / name).is_file()]
        if missing:
            hint = ("; the run was made without tracks (`badia run SCENARIO --out "
                    f"{folder}` records them)") if TRACKS_FILE in missing and len(missing) <= 2 \
                else ""  # fmt: skip
            raise _fail(folder, f"missing {', '.join(missing)}{hint}")
        try:
            scenario = load_scenario(folder / "scenario.yaml")
        except ScenarioError as exc:
            raise _fail(folder / "scenario.yaml", f"not a valid scenario ({exc.messages[0]})"
                        ) from None  # fmt: skip
        self.meta, self._tracks = _read_tracks(folder / TRACKS_FILE)
        self.known_meta, self._known = _read_tracks(folder / KNOWLEDGE_FILE)
        self.base = DesertModel(scenario)  # never stepped: terrain, clock, light, factions
        base = self.base
        if (self.meta.get("rows"), self.meta.get("cols")) != base.terrain.shape:
            raise _fail(folder / TRACKS_FILE, "its grid is not the scenario's map")
        if self.meta.get("factions") != base.faction_names:
            raise _fail(folder / TRACKS_FILE, "its factions are not the scenario's")
        self.scenario = scenario
        self.every_hours = int(self.meta["every_hours"])
        kinds = self.meta.get("kinds", list(KINDS))
        factions = base.faction_names
        self.unit_meta = [(str(name), factions[int(f)], kinds[int(k)])
                          for name, f, k in self.meta["units"]]  # fmt: skip
        hour = self._tracks["hour"]
        self.hours = np.unique(hour)  # the recorded hours, ascending
        if not len(self.hours):
            raise _fail(folder / TRACKS_FILE, "no recorded hours")
        # rows of recorded hour i: starts[i]:starts[i + 1] (the file is sorted by hour)
        self._starts = np.searchsorted(hour, np.append(self.hours, self.hours[-1] + 1))
        self._known_hour = self._known["hour"]
        self.events = _read_events(folder / "events.jsonl")
        self._event_hours = [int(e["hour"]) for e in self.events]
        import pandas as pd

        try:
            self.daily = pd.read_parquet(folder / "daily.parquet")
        except Exception as exc:  # a damaged file: pyarrow raises several types
            raise _fail(folder / "daily.parquet", f"not a readable Parquet file "
                                                  f"({type(exc).__name__})") from None  # fmt: skip

    @property
    def last_hour(self) -> int:
        return int(self.hours[-1])

    def recorded(self, hour: int) -> int:
        """The latest recorded hour at or before ``hour`` (the first one if before it)."""
        i = int(np.searchsorted(self.hours, hour, side="right")) - 1
        return int(self.hours[max(i, 0)])

    def frame(self, hour: int) -> ReplayFrame:
        """The run at the recorded hour ``recorded(hour)``."""
        hour = self.recorded(hour)
        i = int(np.searchsorted(self.hours, hour))
        rows = slice(self._starts[i], self._starts[i + 1])
        t = self._tracks
        n = len(self.unit_meta)
        base = self.base
        f = ForceTable(max(n, 1))
        f.n = n
        fac_index = base.faction_index
        f.faction[:n] = [fac_index[fac] for _, fac, _ in self.unit_meta]
        f.kind[:n] = [KINDS.index(kind) for _, _, kind in self.unit_meta]
        idx = t["unit"][rows].astype(np.int64)
        f.row[idx], f.col[idx] = np.divmod(t["cell"][rows].astype(np.int64), base.terrain.cols)
        f.alive[idx] = True
        f.strength[idx] = t["strength"][rows]
        f.posture[idx] = t["posture"][rows]
        targets = np.full(n, -1, dtype=np.int64)
        targets[idx] = t["target"][rows]
        units = [ReplayUnit(i, name, fac, kind, int(f.row[i]), int(f.col[i]),
                            int(targets[i]) if targets[i] >= 0 else None, bool(f.alive[i]))
                 for i, (name, fac, kind) in enumerate(self.unit_meta)]  # fmt: skip
        return ReplayFrame(base, hour, f, self._knowledge_at(hour, n), units,
                           self.events[: bisect.bisect_left(self._event_hours, hour)])

    def _knowledge_at(self, hour: int, n: int) -> Knowledge:
        """Each faction's knowledge at ``hour``: the last recorded change of every (faction,
        unit) pair up to then."""
        base = self.base
        k = Knowledge(len(base.faction_names), max(n, 1), base.knowledge.delay)
        end = int(np.searchsorted(self._known_hour, hour, side="right"))
        if end:
            kn = self._known
            fac = kn["faction"][:end].astype(np.int64)
            unit = kn["unit"][:end].astype(np.int64)
            key = fac * (n + 1) + unit
            # the last change of each pair: np.unique on the reversed keys finds first ones
            _, first_rev = np.unique(key[::-1], return_index=True)
            last = end - 1 - first_rev
            fi, ui = fac[last], unit[last]
            k.seen_hour[fi, ui] = kn["seen_hour"][last]
            k.seen_cell[fi, ui] = kn["seen_cell"][last]
            k.shared_hour[fi, ui] = kn["shared_hour"][last]
        return k

    # ------------------------------------------------------------------ the clock as text
    def when_text(self, hour: int) -> str:
        """``day 12, 02:00``: the run's day (day 1 starts at the run's start) and local time."""
        return f"day {hour // 24 + 1}, {self.base.clock.at(hour).local:%H:%M}"

    def parse_when(self, text: str) -> int:
        """The recorded hour a reviewer means: ``day 12, 02:00``, ``d12 2:00``, ``day 12``,
        ``hour 266`` or ``266``. Raises ``ValueError`` (one line) for anything else."""
        s = text.strip().lower()
        m = re.fullmatch(r"(?:hour|h)?\s*(\d+)", s)
        if m:
            hour = int(m.group(1))
        else:
            m = re.fullmatch(r"(?:day|d)\s*(\d+)\s*(?:[,;]\s*|\s+)?(?:(\d{1,2})(?::(\d{2}))?)?", s)
            if not m:
                raise ValueError(f"'{text.strip()[:40]}': expected 'day 12, 02:00' or an hour")
            day = int(m.group(1))
            if day < 1:
                raise ValueError(f"day {day}: days start at 1")
            hour = (day - 1) * 24
            if m.group(2) is not None:
                hh, mm = int(m.group(2)), int(m.group(3) or 0)
                if hh > 23 or mm > 59:
                    raise ValueError(f"{hh:02d}:{mm:02d}: not a time of day")
                start = self.base.clock.at(hour).local
                hour += (hh - start.hour) % 24
        if hour > self.last_hour:
            raise ValueError(f"{self.when_text(hour)} is after the run's end "
                             f"({self.when_text(self.last_hour)})")  # fmt: skip
        return self.recorded(hour)


def _read_events(path: Path) -> list[dict]:
    if path.stat().st_size > MAX_EVENTS_BYTES:
        raise _fail(path, f"larger than {MAX_EVENTS_BYTES // 2**20} MB")
    events = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                int(e["hour"]), int(e["row"]), int(e["col"]), str(e["type"])
            except (ValueError, KeyError, TypeError):
                raise _fail(path, f"line {n}: not an event of badia's log") from None
            events.append(e)
    events.sort(key=lambda e: int(e["hour"]))  # stable: the log's order within an hour
    return events


def open_replay(path: Path | str) -> Replay:
    """The run in ``path`` (a ``badia run`` output folder). Raises :class:`ReplayError`, one
    line naming the path and what is missing or wrong."""
    folder = Path(path)
    if not folder.exists():
        raise _fail(folder, "no such folder")
    if not folder.is_dir():
        raise _fail(folder, "not a folder (give the folder `badia run --out` wrote)")
    return Replay(folder)


def batch_run_folder(results: Path, run_id: int) -> Path:
    """The replay folder of batch run ``run_id`` in the results folder ``results``."""
    from sim.experiments.store import replay_folder as store_folder

    return store_folder(results, run_id)


def replay_folder(path: Path | None, run_id: int | None, scenario: Path | None = None) -> Path:
    """The run folder ``badia viz --replay PATH [--run ID]`` means, checked by opening it:
    a ``badia run`` folder; a batch results folder with ``--run ID``; or ``RESULTS_DIR/ID``.
    Raises :class:`ReplayError` (one line) when it cannot be replayed."""
    if path is None:
        raise ReplayError("--run: give the batch results folder with --replay RESULTS_DIR")
    if scenario is not None:
        raise ReplayError(f"{scenario}: a scenario and --replay cannot be opened together")
    path = Path(path)
    if run_id is not None and run_id < 0:
        raise ReplayError(f"--run {run_id}: run ids are whole numbers >= 0")
    if run_id is None and not path.exists() and (path.parent / "manifest.json").is_file():
        name = path.name.removeprefix("run-")
        if name.isdigit():  # RESULTS_DIR/ID
            path, run_id = path.parent, int(name)
    is_batch = (path / "manifest.json").is_file()
    if run_id is not None:
        if not path.exists():
            raise _fail(path, "no such folder")
        if not is_batch:
            raise _fail(path, "not a batch results folder (no manifest.json); --run needs one")
        folder = batch_run_folder(path, run_id)
        if not folder.is_dir():
            raise _fail(path, f"no replay files for run {run_id} (expected {folder}; a batch "
                              "keeps them only with `keep: {tracks: true}` in its experiment)")
        path = folder
    elif is_batch:
        raise _fail(path, "a batch results folder: choose one of its runs with --run ID")
    open_replay(path)
    return path
