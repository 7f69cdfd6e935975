"""Unit tracks for replay: where every living unit was, and what each side knew, every
``every_hours`` hours of a run, so ``badia viz --replay`` can draw any recorded hour without
re-simulating.

:class:`TrackRecorder` only *reads* the model after a step (no random numbers, no change to
any list or array the run uses), so a run with tracks writes the same daily metrics and event
log as one without (``tests/test_tracks.py``).

Two Parquet files, beside ``daily.parquet`` and ``events.jsonl``:

``tracks.parquet``, one row per living unit per recorded hour, sorted by (hour, unit):

=============  =======  ========================================================================
column         type     meaning
=============  =======  ========================================================================
``hour``       int32    hours simulated (0 = the start); the state shown at that model hour
``unit``       int16    the unit's index: its name, faction and kind are in the file's metadata
``cell``       int32    flat cell index, ``row * cols + col``
``strength``   float32  fighters
``posture``    int8     :class:`sim.rules.state.Posture`
``target``     int16    index of the unit it is attacking, -1 for none
=============  =======  ========================================================================

The schema metadata ``badia.tracks`` is JSON: format version, ``every_hours``, ``hours`` (the run's
length), the grid's ``rows`` and ``cols``, ``factions``, ``kinds``, and ``units`` as
``[name, faction index, kind index]`` by unit index (a dictionary: names are stored once).

``knowledge.parquet``, one row per change of what a faction knows of a unit since the previous
recorded hour (``hour``, ``faction`` int8, ``unit`` int16, ``seen_hour``, ``seen_cell``,
``shared_hour`` int32): replaying the changes up to hour h gives each faction's
:class:`sim.rules.knowledge.Knowledge` at h, exactly, for the hours recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.scenario.vocab import KINDS

if TYPE_CHECKING:
    from sim.engine.model import DesertModel

TRACKS_FILE = "tracks.parquet"
KNOWLEDGE_FILE = "knowledge.parquet"
FORMAT_VERSION = 1
METADATA_KEY = b"badia.tracks"
#: Longest recording interval: a day (a coarser track would jump across the map between frames).
MAX_EVERY_HOURS = 24
#: Unit indices are stored as int16.
MAX_UNITS = np.iinfo(np.int16).max


@dataclass(frozen=True)
class TrackConfig:
    """How often a run records unit positions for replay (``badia run --track-every-hours``)."""

    every_hours: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.every_hours, int) or not 1 <= self.every_hours <= MAX_EVERY_HOURS:
            raise ValueError(f"every_hours: expected a whole number from 1 to {MAX_EVERY_HOURS}, "
                             f"got {self.every_hours!r}")


class TrackRecorder:
    """Reads a model's force table and knowledge at hour 0 and every ``every_hours`` hours
    after (and at the last hour simulated); :meth:`write` stores the two files."""

    def __init__(self, model: DesertModel, config: TrackConfig | None = None) -> None:
        self.config = config or TrackConfig()
        self.cols = model.terrain.cols
        self.rows = model.terrain.rows
        self.hours = int(model.spec.hours)
        self.factions = list(model.faction_names)
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._known: list[tuple[np.ndarray, ...]] = []
        k = model.knowledge
        self._prev = (k.seen_hour.copy(), k.seen_cell.copy(), k.shared_hour.copy())
        self._last_hour = -1
        self._units: list[tuple[str, int, int]] = []
        self.observe(model)

    def observe(self, model: DesertModel) -> None:
        """Record the model's state if its hour is due (call after every step)."""
        hour = model.hour
        due = hour % self.config.every_hours == 0 or hour >= self.hours
        if not due or hour == self._last_hour:
            return
        self._last_hour = hour
        f = model.force
        n = f.n
        if n > MAX_UNITS:
            raise ValueError(f"{n} units: more than tracks can index ({MAX_UNITS})")
        alive = np.flatnonzero(f.alive[:n])
        target = np.full(n, -1, dtype=np.int16)
        attacks = [(u.idx, u.attack_target) for u in model.units if u.attack_target is not None]
        if attacks:
            who, whom = zip(*attacks, strict=True)
            target[list(who)] = whom
        self._chunks.append((
            np.full(len(alive), hour, dtype=np.int32),
            alive.astype(np.int16),
            (f.row[alive].astype(np.int64) * self.cols + f.col[alive]).astype(np.int32),
            f.strength[alive].astype(np.float32),
            f.posture[alive].astype(np.int8),
            target[alive],
        ))  # fmt: skip
        k = model.knowledge
        now = (k.seen_hour, k.seen_cell, k.shared_hour)
        changed = np.zeros(k.seen_hour.shape, dtype=bool)
        for a, b in zip(now, self._prev, strict=True):
            changed |= a != b
        fi, ui = np.nonzero(changed)
        if len(fi):
            self._known.append((
                np.full(len(fi), hour, dtype=np.int32), fi.astype(np.int8), ui.astype(np.int16),
                *(a[fi, ui].astype(np.int32) for a in now),
            ))  # fmt: skip
            for prev, a in zip(self._prev, now, strict=True):
                prev[fi, ui] = a[fi, ui]
        if len(self._units) != len(model.units):  # units are only ever added (new cells)
            self._units = [(u.name, model.faction_index[u.faction], KINDS.index(u.kind))
                           for u in sorted(model.units, key=lambda u: u.idx)]  # fmt: skip

    def metadata(self) -> dict:
        return {"format": FORMAT_VERSION, "every_hours": self.config.every_hours,
                "hours": self.hours, "rows": self.rows, "cols": self.cols,
                "factions": self.factions, "kinds": list(KINDS),
                "units": [list(u) for u in self._units]}  # fmt: skip

    def write(self, out: Path) -> list[Path]:
        """Write ``tracks.parquet`` and ``knowledge.parquet`` into the folder ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in self.files().items():
            (out / name).write_bytes(data)
            paths.append(out / name)
        return paths

    def files(self) -> dict[str, bytes]:
        """The two files' names and bytes."""
        import io

        import pyarrow.parquet as pq

        meta = {METADATA_KEY: json.dumps(self.metadata(), separators=(",", ":")).encode()}
        names = ("hour", "unit", "cell", "strength", "posture", "target")
        dtypes = (np.int32, np.int16, np.int32, np.float32, np.int8, np.int16)
        tracks = _table(self._chunks, names, dtypes, meta)
        knames = ("hour", "faction", "unit", "seen_hour", "seen_cell", "shared_hour")
        kdtypes = (np.int32, np.int8, np.int16, np.int32, np.int32, np.int32)
        # the unit list is the tracks file's; this file only says what format it is
        kmeta = {METADATA_KEY: json.dumps({"format": FORMAT_VERSION}).encode()}
        known = _table(self._known, knames, kdtypes, kmeta)
        out = {}
        for table, name in ((tracks, TRACKS_FILE), (known, KNOWLEDGE_FILE)):
            buf = io.BytesIO()
            # zstd and a row group per file: the columns are sorted runs of small integers
            pq.write_table(table, buf, compression="zstd", row_group_size=max(table.num_rows, 1))
            out[name] = buf.getvalue()
        return out


def _table(chunks, names, dtypes, meta):
    import pyarrow as pa

    cols = [np.concatenate([c[i] for c in chunks]) if chunks else np.empty(0, dt)
            for i, dt in enumerate(dtypes)]  # fmt: skip
    return pa.table({n: pa.array(c.astype(dt, copy=False)) for n, c, dt in
                     zip(names, cols, dtypes, strict=True)}).replace_schema_metadata(meta)
