"""The app's model: :class:`VizModel`, a :class:`~sim.engine.model.DesertModel` built from the
app's inputs, and the SolaraViz ``model_params`` that rebuild it on Reset."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.app.scenarios import (
    SliderSpec,
    bundled_scenarios,
    checked_scenario_path,
    slider_specs,
    start_scenario,
)
from sim.engine.model import DEFAULT_SCENARIO, DesertModel, ModelConfig
from sim.errors import ScenarioError
from sim.scenario.loading import load_scenario


@dataclass
class VizInfo:
    """What the app shows about how a :class:`VizModel` was built."""

    source: Path  # the scenario file
    key: str  # identity of the scenario the sliders belong to
    bundled_name: str  # stem of the bundled file, or "" for one's own path
    custom_path: str  # the path typed in, or ""
    seed_text: str  # the seed as typed ("" = the scenario's)
    sliders: list[SliderSpec] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)  # every slider's value in this run
    changed: dict[str, float] = field(default_factory=dict)  # the ones that differ from default
    overrides: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # one-line problems with the inputs


class VizModel(DesertModel):
    """A :class:`DesertModel` built from the app's inputs (every argument has a default).

    SolaraViz rebuilds the model on Reset as ``type(model)(**params)``, so ``__init__`` takes
    only keyword arguments with defaults.

    Args:
        scenario_file: stem of a bundled scenario (``scenarios/<stem>.yaml``).
        scenario_path: one's own scenario file; used instead of ``scenario_file`` when not blank.
        rng: the seed as text or int; blank or None takes the scenario's seed.
        patrols, cells, night_sensor_range_km, border_security, escort_strength: slider values
            (see :func:`~sim.app.scenarios.slider_specs`); None or the scenario's own value
            changes nothing.
        sliders_for: the scenario the slider values were chosen for (``VizInfo.key``); values
            chosen for another scenario are ignored, so switching scenarios starts from the new
            scenario's own values.

    Bad input never raises: a scenario that does not load falls back to the start scenario and
    a bad seed to the scenario's seed, each with a one-line notice in ``self.viz.notices``.
    """

    def __init__(
        self,
        scenario_file: str = "",
        scenario_path: str = "",
        rng: str | int | None = "",
        patrols: int | None = None,
        cells: int | None = None,
        night_sensor_range_km: float | None = None,
        border_security: float | None = None,
        escort_strength: int | None = None,
        sliders_for: str = "",
    ):
        notices: list[str] = []
        bundled = bundled_scenarios()
        custom = str(scenario_path or "").strip()
        checked = checked_scenario_path(custom) if custom else (None, "")
        if checked[1]:
            notices.append(checked[1])
            custom = ""
        if checked[0] is not None:
            source = checked[0]
        elif scenario_file in bundled:
            source = bundled[scenario_file]
        else:
            if scenario_file:
                notices.append(f"no bundled scenario '{scenario_file}'; opened the start scenario")
            source = start_scenario()
        try:
            base = load_scenario(source)
        except ScenarioError as exc:
            # a file in an allowed folder (the author's own): its problems, file and field
            notices.extend(exc.messages[:3])
            fallback = start_scenario()
            if fallback.resolve() == source.resolve():
                fallback = DEFAULT_SCENARIO
            notices.append(f"opened {_short_path(fallback)} instead")
            source, custom = fallback, ""
            base = load_scenario(source)

        seed_text = "" if rng is None else str(rng).strip()
        seed: int | None = None
        if seed_text:
            try:
                seed = int(seed_text)
                if seed < 0:
                    raise ValueError
            except ValueError:
                notices.append(f"seed '{seed_text}' is not a whole number >= 0; "
                               f"used the scenario's seed {base.seed}")  # fmt: skip
                seed = None

        key = str(source.resolve())
        given = {"patrols": patrols, "cells": cells,
                 "night_sensor_range_km": night_sensor_range_km,
                 "border_security": border_security,
                 "escort_strength": escort_strength}  # fmt: skip
        specs = slider_specs(base)
        use_sliders = not sliders_for or sliders_for == key
        values: dict[str, float] = {}
        changed: dict[str, float] = {}
        overrides: list[str] = []
        for spec in specs:
            value = given.get(spec.name)
            values[spec.name] = spec.value
            if not use_sliders or value is None or value == "":
                continue
            value = float(value) if spec.is_float else round(float(value))
            values[spec.name] = value
            if not math.isclose(float(value), float(spec.value), abs_tol=1e-9):
                changed[spec.name] = value
                overrides += spec.overrides(value)
        scenario = base
        if overrides:
            try:
                scenario = load_scenario(source, overrides)
            except ScenarioError as exc:
                notices.extend(exc.messages[:3])
                notices.append("ran the scenario without the slider changes")
                values = {s.name: s.value for s in specs}
                changed, overrides = {}, []

        super().__init__(scenario, rng=seed, config=ModelConfig(collect_every_hours=1))
        self.viz = VizInfo(
            source=source,
            key=key,
            bundled_name=next((k for k, p in bundled.items() if str(p.resolve()) == key), ""),
            custom_path=custom,
            seed_text=seed_text,
            sliders=specs,
            values=values,
            changed=changed,
            overrides=overrides,
            notices=notices,
        )


def _short_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def model_params(model: VizModel) -> dict[str, Any]:
    """SolaraViz ``model_params`` for the scenario ``model`` runs (its sliders, current values)."""
    info = model.viz
    names = list(bundled_scenarios())
    params: dict[str, Any] = {
        "scenario_file": {"type": "Select", "label": "Scenario", "values": names,
                          "value": info.bundled_name or (names[0] if names else "")},
        "scenario_path": {"type": "InputText", "label": "...or a scenario file (path)",
                          "value": info.custom_path},
        "rng": {"type": "InputText", "label": "Seed (blank: the scenario's)",
                "value": info.seed_text},
    }  # fmt: skip
    for spec in info.sliders:
        params[spec.name] = spec.param(info.values.get(spec.name))
    params["sliders_for"] = info.key
    return params


def initial_model() -> VizModel:
    """The model the app opens with (``$BADIA_VIZ_SCENARIO``, the scenario's seed)."""
    source = start_scenario()
    bundled = {str(p.resolve()): k for k, p in bundled_scenarios().items()}
    stem = bundled.get(str(source.resolve()))
    if stem is not None:
        return VizModel(scenario_file=stem)
    return VizModel(scenario_path=str(source))
