"""The force table: every unit's numbers as numpy columns, so rules update all units at once."""

from __future__ import annotations

from typing import Any

import numpy as np


class ForceTable:
    """Per-unit numeric state as numpy columns (structure of arrays), indexed by ``Unit.idx``.

    Columns that change every hour live here so the rules can update all units at once.
    """

    FLOAT_COLUMNS = (
        "strength", "strength0", "vehicles", "speed_kmh", "offroad_speed_kmh",
        "sensor_day_km", "sensor_night_km", "weapon_range_km", "kill_rate_per_hour",
        "water_days", "fuel_days", "ammo_days", "water_cap", "fuel_cap", "ammo_cap",
        "breakoff", "path_clock", "search_factor",
    )  # fmt: skip
    INT_COLUMNS = (
        "row", "col", "faction", "kind", "mobility", "posture", "path_pos", "path_last",
        "wake_hour",
    )  # fmt: skip
    BOOL_COLUMNS = ("alive", "fortified", "fires")

    def __init__(self, capacity: int):
        self.n = 0
        for name in self.FLOAT_COLUMNS:
            setattr(self, name, np.zeros(capacity, dtype=np.float64))
        for name in self.INT_COLUMNS:
            setattr(self, name, np.zeros(capacity, dtype=np.int32))
        for name in self.BOOL_COLUMNS:
            setattr(self, name, np.zeros(capacity, dtype=bool))

    def add(self, **values) -> int:
        """Append one unit's row and return its index."""
        i = self.n
        self.n += 1
        for key, value in values.items():
            getattr(self, key)[i] = value
        return i

    def view(self, name: str) -> np.ndarray:
        """The live part of a column."""
        return getattr(self, name)[: self.n]

    def cells(self, idx: Any, cols: int) -> np.ndarray:
        """Flat cell indices (``row * cols + col``) of the units ``idx``."""
        return self.row[idx].astype(np.int64) * cols + self.col[idx]
