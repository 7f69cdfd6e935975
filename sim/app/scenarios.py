"""The app's scenarios and sliders: the bundled scenario list, the start scenario, and the
parameter sliders that make sense for a scenario, each mapped to override paths of it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.engine.model import DEFAULT_SCENARIO
from sim.errors import PathError
from sim.scenario.defaults import resolved_unit
from sim.scenario.loading import SCENARIO_DIR
from sim.scenario.overrides import resolve_path
from sim.scenario.schema import Scenario

#: Environment variable naming the scenario the app starts with (set by ``badia viz``).
ENV_SCENARIO = "BADIA_VIZ_SCENARIO"


def bundled_scenarios() -> dict[str, Path]:
    """The scenario files shipped in ``scenarios/``, by file stem, sorted."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.yaml"))}


def start_scenario() -> Path:
    """The scenario the app opens with: ``$BADIA_VIZ_SCENARIO`` or the default scenario."""
    env = os.environ.get(ENV_SCENARIO, "").strip()
    return Path(env) if env else DEFAULT_SCENARIO


#: Environment variables set by ``badia viz``: the folder it was started in, and the extra
#: scenario folder of ``--scenarios DIR``. The path field opens files only under these and the
#: bundled scenarios.
ENV_ROOT = "BADIA_VIZ_ROOT"
ENV_SCENARIOS = "BADIA_VIZ_SCENARIOS"
#: A scenario file larger than this is refused before it is read (bundled ones are < 30 kB).
MAX_SCENARIO_BYTES = 1_000_000


def allowed_folders() -> list[Path]:
    """Folders the app's path field may open scenario files from."""
    out = [SCENARIO_DIR.resolve()]
    for var in (ENV_ROOT, ENV_SCENARIOS):
        value = os.environ.get(var, "").strip()
        if value:
            out.append(Path(value).resolve())
    return out


def checked_scenario_path(text: str) -> tuple[Path | None, str]:
    """``(path, "")`` if ``text`` names a scenario file the app may open, else ``(None, why)``.

    Allowed: a ``.yaml``/``.yml`` regular file under the bundled scenarios, the folder
    ``badia viz`` was started in, or its ``--scenarios`` folder, at most ``MAX_SCENARIO_BYTES``.
    The reason never says more than the user typed: whether some other file exists, or what it
    holds, is nobody's business who can reach the page."""
    refused = (None, f"'{text}': not a scenario file the app may open (a .yaml file in the "
                     "bundled scenarios or the folder badia viz was started in)")
    try:
        path = Path(text).expanduser()
        if not path.is_absolute():
            root = os.environ.get(ENV_ROOT, "").strip()
            path = (Path(root) if root else Path.cwd()) / path
        path = path.resolve()
    except (OSError, RuntimeError, ValueError):
        return refused
    if path.suffix.lower() not in (".yaml", ".yml"):
        return refused
    if not any(path.is_relative_to(folder) for folder in allowed_folders()):
        return refused
    try:
        if not path.is_file() or path.stat().st_size > MAX_SCENARIO_BYTES:
            return refused
    except OSError:
        return refused
    return path, ""


@dataclass(frozen=True)
class SliderSpec:
    """One parameter slider: what it is called, its range, and the scenario paths it sets.

    ``value`` is the scenario's own value (the slider's default); a slider left at it changes
    nothing. ``mode`` is ``"total"`` (the value is a total count spread over ``paths`` in
    proportion to their counts, each at least 1) or ``"value"`` (every path is set to it).
    """

    name: str
    label: str
    value: float
    min: float
    max: float
    step: float
    paths: tuple[str, ...]
    mode: str = "value"
    shares: tuple[int, ...] = ()
    unit: str = ""

    @property
    def is_float(self) -> bool:
        return isinstance(self.step, float) and not float(self.step).is_integer()

    def param(self, current: float | None = None) -> dict[str, Any]:
        """The SolaraViz ``model_params`` entry (showing ``current``, else the default)."""
        value = self.value if current is None else current
        kind = "SliderFloat" if self.is_float else "SliderInt"
        cast = float if self.is_float else int
        return {"type": kind, "label": self.label, "value": cast(value), "min": cast(self.min),
                "max": cast(self.max), "step": cast(self.step)}  # fmt: skip

    def overrides(self, value: float) -> list[str]:
        """``PATH=VALUE`` strings that put ``value`` into the scenario."""
        if self.mode == "total":
            counts = distribute(self.shares, round(value))
            return [f"{p}={c}" for p, c in zip(self.paths, counts, strict=True)]
        text = f"{float(value):g}" if self.is_float else str(round(value))
        return [f"{p}={text}" for p in self.paths]

    def describe(self, value: float) -> str:
        text = f"{float(value):g}" if self.is_float else str(round(value))
        return f"{self.label.split(' (')[0]} {text}{self.unit}"


def distribute(shares: Sequence[int], total: int) -> list[int]:
    """Split ``total`` over items in proportion to ``shares``, each at least 1 (largest remainder).

    The sum is exactly ``max(total, len(shares))``."""
    n = len(shares)
    total = max(int(total), n)
    weights = np.asarray(shares, dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(n, 1.0 / n)
    # one each first, then the rest in proportion
    extra = weights * (total - n)
    out = np.floor(extra).astype(int) + 1
    left = total - int(out.sum())
    order = np.argsort(-(extra - np.floor(extra)), kind="stable")
    out[order[:left]] += 1
    return out.tolist()


def _matches(scenario: Scenario, path: str) -> list[tuple[tuple, Any]]:
    try:
        return resolve_path(scenario, path)
    except PathError:
        return []


def _weighted_median(values: Sequence[float], weights: Sequence[int]) -> float:
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    w = np.cumsum(np.asarray(weights, dtype=float)[order])
    return float(v[np.searchsorted(w, w[-1] / 2.0)])


def slider_specs(scenario: Scenario) -> list[SliderSpec]:
    """The sliders that make sense for ``scenario``: each only if its paths resolve in it.

    - ``patrols``: total number of patrol units (``units[kind=patrol].count``, spread over the
      patrol entries in proportion);
    - ``cells``: total number of insurgent cells (``units[kind=cell].count``);
    - ``night_sensor_range_km``: night sensor range of every unit of the garrison factions
      (``units[faction=F].night_sensor_range_km``);
    - ``border_security``: starting border security of the factions that have one (or, on a map
      with borders, of the garrison factions with border posts) (``factions.F.border_security``);
    - ``escort_strength``: fighters escorting each convoy (``units[i].tactic.escort_strength``).
    """
    specs: list[SliderSpec] = []
    for name, kind, label in (("patrols", "patrol", "Patrols (total)"),
                              ("cells", "cell", "Insurgent cells (total)")):  # fmt: skip
        hits = _matches(scenario, f"units[kind={kind}].count")
        if hits:
            counts = tuple(int(v) for _, v in hits)
            total = sum(counts)
            specs.append(SliderSpec(
                name, label, total, len(counts), max(2 * total, total + 6, 8), 1,
                tuple(f"units[{loc[1]}].count" for loc, _ in hits), "total", counts))  # fmt: skip

    garrison = [f for f, spec in scenario.factions.items() if spec.role == "garrison"]
    paths, values, weights = [], [], []
    for fac in garrison:
        if _matches(scenario, f"units[faction={fac}].night_sensor_range_km"):
            paths.append(f"units[faction={fac}].night_sensor_range_km")
            for u in scenario.units:
                if u.faction == fac:
                    values.append(resolved_unit(u).night_sensor_range_km)
                    weights.append(u.count)
    if paths:
        default = round(2 * _weighted_median(values, weights)) / 2
        specs.append(SliderSpec("night_sensor_range_km", "Night sensor range, garrison (km)",
                                default, 0.5, 10.0, 0.5, tuple(paths), unit=" km"))  # fmt: skip

    secured = [f for f, spec in scenario.factions.items() if spec.border_security > 0]
    if not secured and scenario.map.borders:
        secured = [f for f in garrison
                   if any(u.faction == f and u.kind == "border_post" for u in scenario.units)]
    paths = [f"factions.{f}.border_security" for f in secured
             if _matches(scenario, f"factions.{f}.border_security")]
    if paths:
        default = max(scenario.factions[f].border_security for f in secured)
        specs.append(SliderSpec("border_security", "Border security (at start)",
                                round(default, 2), 0.0, 1.0, 0.05, tuple(paths)))  # fmt: skip

    hits = [(loc, v) for loc, v in _matches(scenario, "units[kind=convoy].tactic.escort_strength")
            if v is not None]
    if hits:
        counts = [scenario.units[loc[1]].count for loc, _ in hits]
        default = round(_weighted_median([v for _, v in hits], counts))
        specs.append(SliderSpec(
            "escort_strength", "Escort strength (fighters per convoy)", default, 0, 40, 1,
            tuple(f"units[{loc[1]}].tactic.escort_strength" for loc, _ in hits)))  # fmt: skip
    return specs
