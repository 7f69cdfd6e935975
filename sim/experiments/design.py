"""Experiment files: a base scenario, factors, a design, replicates -> a table of runs.

An experiment is one YAML file (`experiments/*.yaml`, format in docs/experiments.md), loaded with
`yaml.safe_load` and validated with pydantic like a scenario. Problems are reported one line
each, `<file>: <field.path>: <message>`, in an `ExperimentError` (a `ScenarioError`, so every
caller that prints scenario errors prints these too).

`expand_design` turns the factors and design into design points (one dict of factor path ->
value each); `plan_runs` crosses them with the replicates and gives every run its seed.

Seeds: run (point p, replicate r) gets
`numpy.random.SeedSequence(seed, spawn_key=(p, r)).generate_state(1, numpy.uint64)[0] >> 1`,
the same stream as `SeedSequence(seed).spawn(...)[p].spawn(...)[r]`. A run's seed depends only on
the experiment seed, its design point and its replicate index: never on how many workers ran it,
in which order, or whether the batch was resumed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sim.errors import ExperimentError, PathError, did_you_mean
from sim.experiments.store import RunIds
from sim.scenario.fields import _DEFER_REFS, FiniteFloat, Int, _short, at_most
from sim.scenario.loading import _data_loc, load_raw, parse_scenario
from sim.scenario.overrides import apply_overrides, set_path
from sim.scenario.paths import parse_path, render_path
from sim.scenario.safe_yaml import read_mapping_file
from sim.scenario.schema import MAX_DAYS, Scenario

#: Refuse designs larger than this many runs (a typo in a level list, not a real experiment).
MAX_RUNS = 1_000_000
#: Most levels one factor may list (the duplicate check and the load-time check of every level
#: against the scenario take time in the number of levels; a design has a handful).
MAX_LEVELS = 1_000
DESIGN_KINDS = ("full_factorial", "latin_hypercube", "sobol", "nolh")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------
# The file format
# --------------------------------------------------------------------------------------------


class RangeSpec(_Model):
    """A closed interval of factor values, `min <= max`."""

    min: FiniteFloat
    max: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> RangeSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self


class FactorSpec(_Model):
    """One factor: explicit `levels`, or a `range` (continuous, or whole numbers if `integer`).

    For sampled designs (latin_hypercube, sobol) a unit sample u in [0, 1) maps to
    `levels[floor(u * k)]`, `min + u * (max - min)`, or for integers
    `floor(min + u * (max - min + 1))` (each whole number equally likely)."""

    levels: list[Any] | None = None
    range: RangeSpec | None = None
    integer: bool = False

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[Any] | None) -> list[Any] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must list at least one level")
        if len(v) > MAX_LEVELS:
            raise ValueError(f"{len(v):,} levels, more than the {MAX_LEVELS:,} a factor may "
                             "list (use a range)")
        seen: list[Any] = []
        for level in v:
            if level in seen:
                raise ValueError(f"level {_short(level)} is listed twice")
            seen.append(level)
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> FactorSpec:
        if (self.levels is None) == (self.range is None):
            raise ValueError("give exactly one of levels: [...] or range: {min, max}")
        if self.integer and self.range is None:
            raise ValueError("integer: true applies to a range (levels are used as written)")
        if self.integer and self.range is not None and not (
                float(self.range.min).is_integer() and float(self.range.max).is_integer()):
            raise ValueError(f"integer range needs whole-number min and max, got "
                             f"{self.range.min:g}..{self.range.max:g}")
        return self

    @property
    def n_levels(self) -> int | None:
        """How many distinct values the factor takes (None for a continuous range)."""
        if self.levels is not None:
            return len(self.levels)
        if self.integer and self.range is not None:
            return int(self.range.max) - int(self.range.min) + 1
        return None

    def all_levels(self) -> list[Any]:
        """Every value, for a full factorial (ValueError for a continuous range)."""
        if self.levels is not None:
            return list(self.levels)
        assert self.range is not None
        if not self.integer:
            raise ValueError("a continuous range has no levels")
        return list(range(int(self.range.min), int(self.range.max) + 1))

    def from_unit(self, u: np.ndarray) -> list[Any]:
        """Map unit samples in [0, 1] to factor values (see the class docstring)."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if self.levels is not None:
            k = len(self.levels)
            idx = np.minimum((u * k).astype(np.int64), k - 1)
            return [self.levels[i] for i in idx]
        assert self.range is not None
        lo, hi = self.range.min, self.range.max
        if self.integer:
            n = int(hi) - int(lo) + 1
            vals = np.minimum(int(lo) + np.floor(u * n).astype(np.int64), int(hi))
            return [int(v) for v in vals]
        return [float(v) for v in lo + u * (hi - lo)]

    def example_value(self) -> Any:
        """A value the factor takes (used to check its path against the base scenario)."""
        if self.levels is not None:
            return self.levels[0]
        assert self.range is not None
        return int(self.range.min) if self.integer else float(self.range.min)


class FullFactorialDesign(_Model):
    """Every combination of every factor's levels (last factor varies fastest)."""

    kind: Literal["full_factorial"]


class LatinHypercubeDesign(_Model):
    """`samples` points from `scipy.stats.qmc.LatinHypercube`, seeded (default: the
    experiment's seed)."""

    kind: Literal["latin_hypercube"]
    samples: Int = Field(ge=1)
    seed: Int | None = Field(default=None, ge=0)
    optimization: Literal["random-cd", "lloyd"] | None = None


class SobolDesign(_Model):
    """Saltelli's scheme for Sobol indices (`SALib.sample.sobol`): N * (2D + 2) points with
    second-order indices, N * (D + 2) without; N (`samples`) a power of two."""

    kind: Literal["sobol"]
    samples: Int = Field(ge=1)
    calc_second_order: bool = True
    scramble: bool = True
    seed: Int | None = Field(default=None, ge=0)

    @field_validator("samples")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            lo = 1 << (v.bit_length() - 1)
            raise ValueError(f"must be a power of two for Sobol' sequences (e.g. {lo} or "
                             f"{lo * 2}), got {v}")
        return v


class NolhDesign(_Model):
    """A nearly orthogonal Latin hypercube of Cioppa and Lucas (2007), the published table
    (17, 33, 65 or 129 runs for up to 7, 11, 16 or 22 factors), `stack` rotated copies of it
    (each copy after the first without the shared centre row): see `sim.experiments.nolh`.
    Deterministic: no seed."""

    kind: Literal["nolh"]
    stack: Int = Field(default=1, ge=1)


def _design_shorthand(v: Any) -> Any:
    # `design: full_factorial` is short for `design: {kind: full_factorial}`
    return {"kind": v} if isinstance(v, str) else v


DesignSpec = Annotated[
    Union[FullFactorialDesign, LatinHypercubeDesign, SobolDesign,  # noqa: UP007 - discriminator
          NolhDesign],
    Field(discriminator="kind"),
    BeforeValidator(_design_shorthand),
]


def _keep_choice(v: Any, allowed: tuple[str, ...]) -> Any:
    if isinstance(v, str):
        if v not in allowed:
            raise ValueError(f"expected {' or '.join(allowed)} or a list of names, got "
                             f"{_short(v)}{did_you_mean(v, allowed)}")
        return v
    if isinstance(v, list):
        bad = [x for x in v if not isinstance(x, str) or not x]
        if bad:
            raise ValueError(f"names must be non-empty strings, got {_short(bad[0])}")
        if len(set(v)) != len(v):
            raise ValueError("a name is listed twice")
        return v
    raise ValueError(f"expected {' or '.join(allowed)} or a list of names, got {_short(v)}")


class KeepSpec(_Model):
    """Which outputs every run stores: daily metrics, summary metrics, event types."""

    daily: str | list[str] = "all"      # all | none | [metric, ...]
    summary: str | list[str] = "all"    # all | none | [metric, ...]
    events: str | list[str] = "all"     # all | none | [event type, ...]
    tracks: bool = False                # replay files per run: replays/run-NNNNNN/ (hourly)

    @field_validator("daily", "summary", "events", mode="before")
    @classmethod
    def _choice(cls, v: Any) -> Any:
        return _keep_choice(v, ("all", "none"))


class Experiment(_Model):
    """An experiment file (see docs/experiments.md)."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    scenario: Annotated[str, Field(min_length=1)]     # relative to the experiment file
    set: dict[str, Any] = Field(default_factory=dict)  # fixed overrides for every run
    factors: dict[str, FactorSpec] = Field(default_factory=dict)
    design: DesignSpec = Field(default_factory=lambda: FullFactorialDesign(kind="full_factorial"))
    replicates: Int = Field(default=1, ge=1)
    days: Annotated[FiniteFloat, at_most(MAX_DAYS, "days", "ten years")] | None = Field(
        default=None, gt=0)
    keep: KeepSpec = Field(default_factory=KeepSpec)
    seed: Int = Field(default=0, ge=0)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError(f"use letters, digits, '_', '.' and '-' (it names the results "
                             f"folder), got {v!r}")
        return v

    def fingerprint_data(self) -> dict[str, Any]:
        """What decides the results (the description and the scenario's spelling do not)."""
        data = self.model_dump(mode="json")
        data.pop("description", None)
        data.pop("scenario", None)
        # replay files change no result, and stores made before they existed must resume
        data.get("keep", {}).pop("tracks", None)
        return data


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _model_fields_at(loc: tuple[Any, ...], data: Any) -> list[str]:
    """Field names of the experiment model at a data path (for 'did you mean')."""
    model: Any = Experiment
    node = data
    for seg in loc:
        node = node.get(seg) if isinstance(node, dict) else None
        if model is Experiment and seg == "factors":
            model = dict
        elif model is dict:
            model = FactorSpec
        elif model is Experiment and seg == "design":
            kind = node.get("kind") if isinstance(node, dict) else node
            model = {"full_factorial": FullFactorialDesign, "latin_hypercube":
                     LatinHypercubeDesign, "sobol": SobolDesign, "nolh": NolhDesign}.get(kind)
        elif isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(seg))
            ann = field.annotation if field else None
            model = next((t for t in (RangeSpec, KeepSpec) if ann is t or (
                ann is not None and t in getattr(ann, "__args__", ()))), None)
        else:
            model = None
    return list(model.model_fields) if isinstance(model, type) and issubclass(
        model, BaseModel) else []


def _format_errors(err: ValidationError, data: dict, source: str) -> list[str]:
    """Pydantic errors as `<file>: <path>: <message>` lines (did-you-mean on unknown keys)."""
    lines: list[str] = []
    for e in err.errors(include_url=False):
        loc, _ = _data_loc(tuple(e["loc"]), data)
        etype, msg = e["type"], e["msg"]
        if etype == "extra_forbidden":
            key, loc = loc[-1] if loc else "?", loc[:-1]
            msg = f"unknown key '{key}'{did_you_mean(key, _model_fields_at(loc, data))}"
        elif etype == "missing":
            msg = "missing required field"
        elif etype == "union_tag_invalid":
            tag = e.get("ctx", {}).get("tag")
            msg = (f"unknown design kind '{tag}'{did_you_mean(tag, DESIGN_KINDS)} "
                   f"(one of {', '.join(DESIGN_KINDS)})")
            loc = (*loc, "kind") if loc and loc[-1] != "kind" else loc
        elif etype == "union_tag_not_found":
            msg = f"missing 'kind' (one of {', '.join(DESIGN_KINDS)})"
        elif etype in ("value_error", "assertion_error"):
            msg = msg.removeprefix("Value error, ").removeprefix("Assertion error, ")
        elif etype.startswith(("model_type", "model_attributes_type", "dict_type")):
            msg = f"expected a mapping of keys, got {_short(e.get('input'))}"
        elif "input" in e and not isinstance(e["input"], (dict, list)):
            msg = f"{msg} (got {_short(e['input'])})"
        path = render_path(loc)
        lines.append(f"{source}: {path}: {msg}" if path else f"{source}: {msg}")
    return lines


@dataclass(frozen=True)
class LoadedExperiment:
    """A validated experiment with its base scenario resolved and checked."""

    spec: Experiment
    source: str               # the experiment file as given (for messages)
    path: Path                # the experiment file, absolute
    text: str                 # the file's text, for provenance
    scenario_source: str      # the base scenario file as named in messages
    scenario: Scenario        # the base scenario with `set` applied, validated
    scenario_yaml: str        # `scenario.to_yaml()`: self-contained, what every run starts from

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self.spec.name


def load_experiment(path: str | Path) -> LoadedExperiment:
    """Read, validate and check an experiment file against its base scenario.

    Checks: the schema (unknown keys with did-you-mean, empty levels, min > max, replicates
    >= 1, ...), that the base scenario exists and is valid, that every `set` and factor path
    names a field of it, and that the design can be expanded. Raises `ExperimentError` (one
    line per problem, each naming the file and field)."""
    p = Path(path)
    source = str(path)
    data = read_mapping_file(p, "experiment file", "name, scenario, factors", ExperimentError)
    try:
        spec = Experiment.model_validate(data)
    except ValidationError as err:
        raise ExperimentError(_format_errors(err, data, source)) from None

    errors: list[str] = []
    for fpath in spec.factors:
        try:
            parse_path(fpath)
        except PathError as exc:
            errors.append(f"{source}: factors.{fpath}: {exc}")
    for fpath in spec.set:
        if fpath in spec.factors:
            errors.append(f"{source}: set.{fpath}: also a factor; a path is either fixed or varied")
    if errors:
        raise ExperimentError(errors)

    scen_path = Path(spec.scenario)
    if not scen_path.is_absolute():
        scen_path = p.parent / scen_path
    scen_source = _display(scen_path)
    if not scen_path.is_file():
        raise ExperimentError(f"{source}: scenario: file not found: {scen_source}")
    raw = load_raw(scen_path)   # ScenarioError names the scenario file

    for fpath, value in spec.set.items():
        try:
            set_path(raw, fpath, value)
        except PathError as exc:
            errors.append(f"{source}: set.{fpath}: {exc} (in {scen_source})")
    for fpath, factor in spec.factors.items():
        try:
            set_path(raw, fpath, factor.example_value())
        except PathError as exc:
            errors.append(f"{source}: factors.{fpath}: {exc} (in {scen_source})")
    if errors:
        raise ExperimentError(errors)

    data_set = apply_overrides(raw, list(spec.set.items()), scen_source, {(): scen_source})
    scenario = parse_scenario(data_set, scen_source, base_dir=scen_path.parent,
                              _provenance={(): scen_source})
    errors = _factor_value_problems(spec, data_set, source)
    if errors:
        raise ExperimentError(errors)
    loaded = LoadedExperiment(
        spec=spec, source=source, path=p.resolve(), text=p.read_text(encoding="utf-8"),
        scenario_source=scen_source, scenario=scenario, scenario_yaml=scenario.to_yaml(),
    )
    expand_design(loaded)   # design problems (a continuous factor in a factorial...) now
    return loaded


def _factor_value_problems(spec: Experiment, base: dict, source: str) -> list[str]:
    """Every level, and both ends of every range, must validate where it lands in the base
    scenario, so that a value no run could take (a count of 10^7, a speed of 10^9 km/h) is one
    line now rather than a failed run per design point later."""
    lines: list[str] = []
    for fpath, factor in spec.factors.items():
        if factor.levels is not None:
            trials = [(f"levels[{i}]", v) for i, v in enumerate(factor.levels)]
        else:
            assert factor.range is not None
            lo, hi = factor.range.min, factor.range.max
            if factor.integer:
                lo, hi = int(lo), int(hi)
            trials = [("range.min", lo), ("range.max", hi)]
        for where, value in trials:
            try:
                Scenario.model_validate(set_path(base, fpath, value),
                                        context={_DEFER_REFS: True})
            except PathError:
                break       # already reported with the factor's path
            except ValidationError as err:
                first = err.errors(include_url=False)[0]
                msg = first["msg"].removeprefix("Value error, ")
                if first["type"] not in ("value_error", "assertion_error") \
                        and not isinstance(first.get("input"), (dict, list)):
                    msg = f"{msg} (got {_short(first.get('input'))})"
                lines.append(f"{source}: factors.{fpath}.{where}: {msg}")
    return lines


def _display(path: Path) -> str:
    """A path as short as it can be said: relative to the working directory if inside it."""
    import os.path

    norm = Path(os.path.normpath(path))
    try:
        return str(norm.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(norm)


# --------------------------------------------------------------------------------------------
# Design expansion
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """Design points: `points[i]` maps each factor path to its value at point i."""

    kind: str
    factors: tuple[str, ...]
    points: tuple[dict[str, Any], ...]
    #: SALib problem + flag for Sobol designs (runs are in SALib's sample order), else None.
    sobol: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The design table as stored in a results manifest."""
        return {"kind": self.kind, "factors": list(self.factors),
                "points": [dict(p) for p in self.points], "sobol": self.sobol}


def expand_design(exp: LoadedExperiment | Experiment, source: str | None = None) -> Design:
    """The experiment's design points. Raises `ExperimentError` if the design cannot be built
    (a continuous range in a full factorial, too many runs, no factors to sample)."""
    spec = exp.spec if isinstance(exp, LoadedExperiment) else exp
    source = source or (exp.source if isinstance(exp, LoadedExperiment) else spec.name)
    names = tuple(spec.factors)
    facs = list(spec.factors.values())
    d = spec.design
    if isinstance(d, FullFactorialDesign):
        errors = [f"{source}: factors.{n}.range: a full_factorial needs levels or "
                  f"integer: true (or use a latin_hypercube / sobol design)"
                  for n, f in spec.factors.items() if f.n_levels is None]
        if errors:
            raise ExperimentError(errors)
        n_points = math.prod(f.n_levels or 1 for f in facs)
        _check_size(source, n_points, spec.replicates)
        points = tuple(dict(zip(names, combo, strict=True))
                       for combo in itertools.product(*(f.all_levels() for f in facs)))
        return Design(d.kind, names, points)
    if not facs:
        raise ExperimentError(f"{source}: factors: a {d.kind} design needs at least one factor")
    if isinstance(d, NolhDesign):
        return _nolh_design(source, d, names, facs, spec.replicates)
    seed = spec.seed if d.seed is None else d.seed
    if isinstance(d, LatinHypercubeDesign):
        from scipy.stats import qmc

        _check_size(source, d.samples, spec.replicates)
        sampler = qmc.LatinHypercube(d=len(facs), optimization=d.optimization,
                                     rng=np.random.default_rng(seed))
        unit = sampler.random(d.samples)
        return Design(d.kind, names, _points(names, facs, unit))
    assert isinstance(d, SobolDesign)
    from SALib.sample import sobol as salib_sobol

    per = 2 * len(facs) + 2 if d.calc_second_order else len(facs) + 2
    _check_size(source, d.samples * per, spec.replicates)
    problem = {"num_vars": len(facs), "names": list(names), "bounds": [[0.0, 1.0]] * len(facs)}
    unit = salib_sobol.sample(problem, d.samples, calc_second_order=d.calc_second_order,
                              scramble=d.scramble, seed=seed)
    return Design(d.kind, names, _points(names, facs, unit),
                  sobol={"problem": problem, "calc_second_order": d.calc_second_order,
                         "samples": d.samples})


def _nolh_design(source: str, d: NolhDesign, names: tuple[str, ...], facs: list[FactorSpec],
                 replicates: int) -> Design:
    """The NOLH table's levels 1..m as factor values: a continuous range gets
    `nolh.scale` (level 1 is min, level m is max); levels and integer ranges get the stratum
    centres `nolh.to_unit(..., strata=True)` through `FactorSpec.from_unit`, so each value
    takes m / k runs, rounded, like the sampled designs."""
    from sim.experiments import nolh

    if len(facs) > nolh.MAX_FACTORS:
        raise ExperimentError(
            f"{source}: factors: {len(facs)} factors, more than the {nolh.MAX_FACTORS} a nolh "
            f"design takes (its largest table has {nolh.TABLE_RUNS[-1]} runs); vary fewer "
            f"factors or use a latin_hypercube design")
    runs = nolh.table_runs(len(facs))
    n_cols = nolh.columns(runs)
    if d.stack > n_cols:
        raise ExperimentError(
            f"{source}: design.stack: at most {n_cols} for {len(facs)} factor(s) (the "
            f"{runs}-run table has {n_cols} columns, so {n_cols} distinct rotations), "
            f"got {d.stack}")
    _check_size(source, nolh.stacked_runs(runs, d.stack), replicates)
    levels = nolh.nolh(len(facs), stack=d.stack)
    columns: list[list[Any]] = []
    for j, f in enumerate(facs):
        if f.range is not None and not f.integer:
            columns.append([float(v) for v in nolh.scale(levels[:, j], runs, f.range.min,
                                                            f.range.max)])
        else:
            columns.append(f.from_unit(nolh.to_unit(levels[:, j], runs, strata=True)))
    points = tuple(dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True))
    return Design(d.kind, names, points)


def _points(names: tuple[str, ...], facs: list[FactorSpec], unit: np.ndarray
            ) -> tuple[dict[str, Any], ...]:
    columns = [f.from_unit(unit[:, j]) for j, f in enumerate(facs)]
    return tuple(dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True))


def _check_size(source: str, n_points: int, replicates: int) -> None:
    if n_points * replicates > MAX_RUNS:
        raise ExperimentError(f"{source}: design: {n_points} points x {replicates} replicates = "
                              f"{n_points * replicates} runs, more than {MAX_RUNS}")


def run_seed(root: int, point_id: int, replicate: int) -> int:
    """The seed of run (point, replicate): `SeedSequence(root, spawn_key=(point, replicate))`
    reduced to a non-negative 63-bit int (fits an int64 Parquet column)."""
    ss = np.random.SeedSequence(root, spawn_key=(point_id, replicate))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def plan_runs(design: Design, replicates: int, root_seed: int) -> Iterator[RunIds]:
    """Every run of the design, in run_id order: run_id = point_id * replicates + replicate."""
    for point_id in range(len(design.points)):
        for rep in range(replicates):
            yield RunIds(point_id * replicates + rep, point_id, rep,
                         run_seed(root_seed, point_id, rep))


def point_overrides(design: Design, point_id: int) -> tuple[tuple[str, Any], ...]:
    """The (path, value) overrides of a design point, in factor order."""
    point = design.points[point_id]
    return tuple((f, point[f]) for f in design.factors)


def fingerprint(exp: LoadedExperiment, design: Design) -> str:
    """A hash of everything that decides a store's results: the experiment (less its
    description), the resolved base scenario and the design table."""
    blob = json.dumps({"experiment": exp.spec.fingerprint_data(),
                       "scenario": exp.scenario_yaml, "design": design.to_json()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def describe(exp: LoadedExperiment, design: Design) -> str:
    """One line: name, design kind, points x replicates = runs."""
    n = len(design.points)
    return (f"{exp.name}: {design.kind}, {len(design.factors)} factor(s), {n} point(s) x "
            f"{exp.spec.replicates} replicate(s) = {n * exp.spec.replicates} runs")

