"""`calibrated.yaml`: a scenario file that `extends:` the calibration's base scenario and sets
the posterior medians, so that `badia run` / `badia batch` run the calibrated model.

Scenario files have no `--set`; `extends:` merges mappings and replaces lists. So a parameter
whose path runs through mappings only (`factions.government.border_security`) becomes a nested
mapping holding just that value, and one that runs through a list (`units[kind=cell].strength`)
replaces the whole list, copied from the base with the medians applied. The file's header
repeats the values as `--set` options on the base scenario.
"""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.errors import CalibrationError, ScenarioError
from sim.experiments.calibration_data import LoadedCalibration
from sim.experiments.tables import atomic_file
from sim.scenario.loading import load_raw, load_scenario
from sim.scenario.overrides import apply_overrides, resolve_path
from sim.scenario.paths import parse_path


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def _minimal_override(data: dict, path: str) -> dict:
    """The smallest mapping that, merged over the base by `extends:`, carries `data`'s value
    at `path` (down the mapping keys; a list on the way is taken whole)."""
    keys: list[str] = []
    node: Any = data
    for seg in parse_path(path):
        if not isinstance(seg, str) or not isinstance(node, dict) or seg not in node:
            break
        keys.append(seg)
        node = node[seg]
        if isinstance(node, list):
            break
    if not keys:   # an alias spelling, or something unexpected: take the top-level key whole
        top = str(parse_path(path)[0])
        keys, node = [top], data.get(top)
    out: Any = copy.deepcopy(node)
    for k in reversed(keys):
        out = {k: out}
    return out


def _yaml_value(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=1000).strip().removesuffix("...") \
        .strip()


def write_calibrated(cal: LoadedCalibration, medians: dict[str, Any], out_dir: Path,
                     populations: pd.DataFrame | None = None) -> Path:
    """Write `out_dir/calibrated.yaml` and check that it loads with the medians in place.
    Raises `CalibrationError` if it does not (a bug: the values were run during the
    calibration)."""
    out_dir = Path(out_dir)
    target = out_dir / "calibrated.yaml"
    raw = load_raw(cal.scenario_path)
    items = list(medians.items())
    data = apply_overrides(raw, items, cal.scenario_source)
    body: dict[str, Any] = {}
    for path, _ in items:
        body = _merge(body, _minimal_override(data, path))
    try:
        extends = os.path.relpath(cal.scenario_path, out_dir.resolve())
    except ValueError:   # another drive
        extends = str(cal.scenario_path)
    doc: dict[str, Any] = {"name": f"{cal.scenario.name}-calibrated",
                           "description": f"{cal.scenario.name} with the posterior medians of "
                                          f"calibration {cal.name}",
                           "extends": extends}
    if cal.spec.days is not None:
        doc["days"] = cal.spec.days
    doc.update(body)
    sets = " ".join(f"--set '{p}={_yaml_value(v)}'" for p, v in items)
    last = ""
    if populations is not None and len(populations):
        fin = populations[populations["t"] >= 0]
        if len(fin):
            row = fin.iloc[-1]
            last = f" (generation {int(row['t'])}, epsilon {row['epsilon']:.4g})"
    header = [
        f"# Calibrated by `badia calibrate {cal.source}` on "
        f"{datetime.now(UTC).date().isoformat()}:",
        f"# the posterior medians{last}; floats to 4 significant digits.",
        "# The same as:",
        f"#   badia run {cal.scenario_source} {sets}",
    ]
    text = "\n".join(header) + "\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True,
                                                     width=100)
    with atomic_file(target) as f:
        f.write(text.encode("utf-8"))
    try:
        scenario = load_scenario(target)
    except ScenarioError as exc:
        raise CalibrationError([f"{target}: does not load: {m}" for m in exc.messages]) from None
    for path, value in items:
        got = [v for _, v in resolve_path(scenario, path)]
        if any(g != value for g in got):
            raise CalibrationError(f"{target}: {path} is {got}, expected {value!r}")
    return target
