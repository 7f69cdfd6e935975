"""Observed data and targets: the rows of an observed CSV, the comparisons (targets) they make
with a run's daily outputs, the ABC distance over them, and loading a calibration file.

Loading turns the observed rows and the calibration's `outputs` into *targets*: one comparison
each of a model statistic (a sum, a count of days, or a longest run of days over a window of run
days) with an observed value and its bound (`min`, `max`, `approx`); see docs/calibration.md for
how periods, regions and bounds are read. `BoundedDistance` is the ABC distance over them.
Nothing here imports pyabc: worker processes import this module.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import CalibrationError, PathError, ScenarioError, did_you_mean
from sim.experiments.calibration_spec import (
    AGGREGATES,
    THEATRE,
    CalibrationSpec,
    ParameterSpec,
    format_errors,
)
from sim.scenario.fields import _short
from sim.scenario.loading import load_raw, parse_scenario
from sim.scenario.overrides import set_path
from sim.scenario.paths import parse_path
from sim.scenario.safe_yaml import read_mapping_file
from sim.scenario.schema import Scenario

OBSERVED_COLUMNS = ("quantity", "period", "value", "bound", "region", "source", "use", "note")
BOUNDS = ("min", "max", "approx")


# --------------------------------------------------------------------------------------------
# Observed data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedRow:
    """One row of an observed CSV file, checked."""

    where: str                # `<file>:<line>` for messages
    quantity: str
    period: str
    first: date
    last: date
    grain: str                # year | month | day: what the period's ends name
    value: float
    bound: str
    regions: frozenset[str]
    region: str               # as written
    source: str
    use: str


def _period_end(text: str) -> tuple[date, date, str]:
    """(first day, last day, grain) of `2020`, `2020-08` or `2020-08-27`."""
    if re.fullmatch(r"\d{4}", text):
        y = int(text)
        return date(y, 1, 1), date(y, 12, 31), "year"
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        first = date(int(m.group(1)), int(m.group(2)), 1)
        return first, _month_end(first), "month"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        d = date.fromisoformat(text)
        return d, d, "day"
    raise ValueError("expected YYYY, YYYY-MM, YYYY-MM-DD or a range of them A/B")


def parse_period(text: str) -> tuple[date, date, str]:
    """(first day, last day, grain) of a period: `2020`, `2020-08`, `2020-08-27` or a range
    `2020-01/2020-04` (months) or `2020-12-01/2020-12-21` (days). Raises ValueError."""
    text = text.strip()
    try:
        if "/" in text:
            a, b = (s.strip() for s in text.split("/", 1))
            first, _, ga = _period_end(a)
            _, last, gb = _period_end(b)
            if ga != gb:
                raise ValueError(f"both ends of a range must be alike ({a} is a {ga}, {b} a {gb})")
            if last < first:
                raise ValueError(f"the range ends ({b}) before it starts ({a})")
            return first, last, ga
        return _period_end(text)
    except ValueError as exc:   # date.fromisoformat on 2020-02-30, month 13, ...
        msg = str(exc)
        if not msg.startswith(("expected", "both", "the range")):
            msg = f"not a date ({msg})"
        raise ValueError(msg) from None


def _month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def region_set(region: str) -> frozenset[str]:
    """`Homs;Deir ez-Zor` -> {Homs, Deir ez-Zor}; a narrowed name (`Homs (Palmyra area)`) is
    kept whole, so it only matches an output that names it exactly."""
    return frozenset(r.strip() for r in region.split(";") if r.strip())


def read_observed(path: Path, source: str) -> list[ObservedRow]:
    """Read and check an observed CSV (columns of experiments/observed/README.md). Raises
    `CalibrationError` with one line per bad row: `<file>: line N: <column>: <message>`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError(f"{source}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{source}: cannot read file ({exc})") from None
    reader = csv.DictReader(text.splitlines(keepends=True))
    have = reader.fieldnames or []
    missing = [c for c in OBSERVED_COLUMNS if c not in have]
    if missing:
        raise CalibrationError(f"{source}: missing column(s) {', '.join(missing)} (expected "
                               f"{','.join(OBSERVED_COLUMNS)})")
    rows: list[ObservedRow] = []
    errors: list[str] = []
    for rec in reader:
        line = reader.line_num
        where = f"{source}: line {line}"
        problems: list[str] = []
        quantity = (rec.get("quantity") or "").strip()
        if not quantity:
            problems.append(f"{where}: quantity: empty")
        try:
            first, last, grain = parse_period(rec.get("period") or "")
        except ValueError as exc:
            problems.append(f"{where}: period: {exc}, got {_short(rec.get('period'))}")
            first = last = date.min
            grain = "day"
        try:
            value = float(rec.get("value") or "")
            if not math.isfinite(value):
                raise ValueError
        except ValueError:
            problems.append(f"{where}: value: expected a number, got {_short(rec.get('value'))}")
            value = math.nan
        bound = (rec.get("bound") or "").strip()
        if bound not in BOUNDS:
            problems.append(f"{where}: bound: expected min, max or approx, got {_short(bound)}"
                            f"{did_you_mean(bound, BOUNDS)}")
        use = (rec.get("use") or "").strip()
        if use not in ("fit", "context"):
            problems.append(f"{where}: use: expected fit or context, got {_short(use)}")
        region = (rec.get("region") or "").strip()
        if not region:
            problems.append(f"{where}: region: empty")
        if problems:
            errors += problems
            continue
        rows.append(ObservedRow(
            where=f"{source}:{line}", quantity=quantity, period=rec["period"].strip(),
            first=first, last=last, grain=grain, value=value, bound=bound,
            regions=region_set(region), region=region, source=(rec.get("source") or "").strip(),
            use=use))
    if errors:
        raise CalibrationError(errors)
    return rows


# --------------------------------------------------------------------------------------------
# Targets: observed rows x outputs -> comparisons
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One comparison: a model statistic over a window of run days against an observed value."""

    key: str                  # summary-statistic name, e.g. `attacks_per_month@2020-08`
    output: int               # index into the calibration's outputs
    quantity: str
    period: str               # the window: `2020-08`, `2020`, or `2020-12-01/2020-12-21`
    region: str               # the observed rows' regions, `;`-joined
    first: date
    last: date
    observed: float
    bound: str                # min | max | approx
    slack: float              # inf: no ceiling on a min (a count for part of the area)
    weight: float             # the output's weight shared among its targets
    columns: tuple[str, ...]
    stat: str                 # sum | days | longest_run
    days: tuple[int, ...]     # run days (1-based) inside the window
    scale: float              # applied to the statistic (see `model_value`)
    at_least: float
    rows: tuple[str, ...]     # `<file>:<line>` of the observed rows used
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """As a JSON-able dict (dates as ISO text)."""
        d = asdict(self)
        d["first"], d["last"] = self.first.isoformat(), self.last.isoformat()
        return d


def run_day_dates(start: datetime, n_days: int) -> list[date]:
    """The calendar date of each run day 1..n: the date at the middle of the day's 24 hours
    (a run starting at 18:00 has day 1 on the next date)."""
    return [(start + timedelta(days=k - 0.5)).date() for k in range(1, n_days + 1)]


def run_days(days: float) -> int:
    """Whole days a run of `days` reports (one daily row per finished 24 hours)."""
    return math.ceil(days * 24.0 - 1e-9) // 24


def _windows(row: ObservedRow, split: str) -> list[tuple[date, date, str]]:
    """The windows a row is compared over: its whole period, or each calendar month of it."""
    if split == "period":
        return [(row.first, row.last, row.period)]
    out = []
    m = date(row.first.year, row.first.month, 1)
    while m <= row.last:
        first, last = max(m, row.first), min(_month_end(m), row.last)
        if first == m and last == _month_end(m):
            label = f"{m.year:04d}-{m.month:02d}"
        elif first == last:
            label = first.isoformat()
        else:
            label = f"{first.isoformat()}/{last.isoformat()}"
        out.append((first, last, label))
        m = _month_end(m) + timedelta(days=1)
    return out


def _combine(members: list[ObservedRow], want: frozenset[str], slack: float
             ) -> tuple[list[tuple[float, str, float, list[ObservedRow], str]], str,
                        list[ObservedRow]]:
    """Observations for one window of an output: ([(value, bound, slack, rows, note)], why the
    window is left out or '', rows not used because others cover their area)."""
    exact = [r for r in members if r.regions == want]
    if exact:
        return ([(r.value, r.bound, slack, [r], "") for r in exact], "",
                [r for r in members if r.regions != want])
    picked: list[ObservedRow] = []
    union: set[str] = set()
    for r in sorted(members, key=lambda r: (-len(r.regions), r.where)):
        if not r.regions & union:
            picked.append(r)
            union |= r.regions
    unused = [r for r in members if r not in picked]
    bounds = {r.bound for r in picked}
    value = sum(r.value for r in picked)
    summed = f"sum of {len(picked)} rows; " if len(picked) > 1 else ""
    if union == want:
        if "min" in bounds and "max" in bounds:
            return [], "its rows mix min and max bounds", []
        bound = "min" if "min" in bounds else "max" if "max" in bounds else "approx"
        return [(value, bound, slack, picked, summed.rstrip("; "))], "", unused
    if "max" in bounds:
        return [], "a ceiling observed for part of the output's regions bounds nothing", []
    return [(value, "min", math.inf, picked,
             f"{summed}covers {';'.join(sorted(union))} only: a floor for the whole")], "", \
        unused


def build_targets(spec: CalibrationSpec, rows: list[ObservedRow], start: datetime,
                  n_days: int) -> tuple[list[Target], list[str], list[str]]:
    """(targets, notes on rows left out, errors) for the calibration's outputs."""
    dates = run_day_dates(start, n_days)
    run_first, run_last = (dates[0], dates[-1]) if dates else (start.date(), start.date())
    targets: list[Target] = []
    notes: list[str] = []
    errors: list[str] = []
    keys: dict[str, int] = defaultdict(int)
    uses = ("fit", "context") if spec.observed.use == "all" else (spec.observed.use,)
    for oi, out in enumerate(spec.outputs):
        stat, split = AGGREGATES[out.aggregate]
        want = out.region_set
        left: dict[str, list[str]] = defaultdict(list)
        groups: dict[tuple[date, date, str], list[ObservedRow]] = defaultdict(list)
        matched = [r for r in rows if r.quantity == out.quantity and r.use in uses]
        for r in matched:
            if not r.regions <= want:
                left[f"region not within {';'.join(sorted(want))}"].append(r.where)
                continue
            for w in _windows(r, split):
                groups[w].append(r)
        n_before = len(targets)
        for (first, last, label), members in sorted(groups.items(), key=lambda kv: kv[0]):
            covered = tuple(k for k, d in enumerate(dates, 1) if first <= d <= last)
            length = (last - first).days + 1
            where = ", ".join(r.where for r in members)
            if not covered:
                left[f"period outside the run ({run_first}..{run_last})"].append(where)
                continue
            coverage = len(covered) / length
            if coverage < spec.observed.min_coverage:
                left[f"the run covers under {spec.observed.min_coverage:.0%} of the period"
                     ].append(f"{label} ({coverage:.0%}; {where})")
                continue
            obs, reason, unused = _combine(members, want, out.slack)
            if reason:
                left[reason].append(f"{label} ({where})")
                continue
            if unused:
                left["overlaps a row for a larger area used instead"].append(
                    f"{label} ({', '.join(r.where for r in unused)})")
            fill = length / len(covered)    # a partly covered window: scale up to all of it
            scale = {"sum": out.scale * fill, "days": fill, "longest_run": 1.0}[stat]
            for value, bound, slack, used, note in obs:
                key = f"{out.quantity}@{label}"
                if want != frozenset(THEATRE):
                    key += f"[{';'.join(sorted(want))}]"
                keys[key] += 1
                if keys[key] > 1:
                    key += f"#{keys[key]}"
                if coverage < 1:
                    note = "; ".join(filter(None, [note, f"run covers {coverage:.0%}"]))
                targets.append(Target(
                    key=key, output=oi, quantity=out.quantity, period=label,
                    region=";".join(sorted(set().union(*(r.regions for r in used)))),
                    first=first, last=last, observed=value, bound=bound, slack=slack,
                    weight=0.0, columns=out.columns, stat=stat, days=covered, scale=scale,
                    at_least=out.at_least, rows=tuple(r.where for r in used), note=note))
        n_out = len(targets) - n_before
        for reason, where in left.items():
            notes.append(f"outputs[{oi}] ({out.quantity}): {len(where)} left out, {reason}: "
                         f"{'; '.join(where[:3])}{' ...' if len(where) > 3 else ''}")
        if n_out == 0:
            errors.append(
                f"outputs[{oi}]: no observed row of quantity '{out.quantity}' (use: "
                f"{spec.observed.use}) can be compared with the run ({run_first}..{run_last}, "
                f"regions {';'.join(sorted(want))})"
                f"{did_you_mean(out.quantity, sorted({r.quantity for r in rows}))}")
        # each output weighs `weight` in all, shared equally among its targets
        for i in range(len(targets) - n_out, len(targets)):
            targets[i] = replace(targets[i], weight=out.weight / n_out)
    return targets, notes, errors


# --------------------------------------------------------------------------------------------
# The distance
# --------------------------------------------------------------------------------------------


def target_loss(model: float, observed: float, bound: str, slack: float) -> float:
    """How far a model value misses one observation, on a log scale (r = log((model + 1) /
    (observed + 1)); the +1 keeps zero counts finite):

    - `approx`: |r|, a symmetric relative error;
    - `min`: 0 from the observed value up to `slack` times it, the relative shortfall -r below
      it, the relative excess r - log(slack) above the slack (none if slack is inf);
    - `max`: the mirror image: 0 from the observed value down to 1/slack of it.
    """
    if not math.isfinite(model):
        return math.inf
    r = math.log((max(model, 0.0) + 1.0) / (max(observed, 0.0) + 1.0))
    if bound == "approx":
        return abs(r)
    ls = math.log(slack) if math.isfinite(slack) else math.inf
    if bound == "min":
        return max(0.0, -r) + max(0.0, r - ls)
    return max(0.0, r) + max(0.0, -r - ls)


@dataclass(frozen=True)
class BoundedDistance:
    """The ABC distance: the weighted mean of `target_loss` over the targets (each output
    weighs its `weight`, shared equally among its targets)."""

    keys: tuple[str, ...]
    bounds: tuple[str, ...]
    slacks: tuple[float, ...]
    weights: tuple[float, ...]

    @classmethod
    def for_targets(cls, targets: list[Target] | tuple[Target, ...]) -> BoundedDistance:
        """The distance over these targets."""
        return cls(tuple(t.key for t in targets), tuple(t.bound for t in targets),
                   tuple(t.slack for t in targets), tuple(t.weight for t in targets))

    def losses(self, x: dict[str, float], x_0: dict[str, float]) -> list[float]:
        """Each target's loss."""
        return [target_loss(float(x.get(k, math.nan)), float(x_0[k]), b, s)
                for k, b, s in zip(self.keys, self.bounds, self.slacks, strict=True)]

    def __call__(self, x: dict[str, float], x_0: dict[str, float]) -> float:
        total = sum(self.weights)
        return sum(w * d for w, d in zip(self.weights, self.losses(x, x_0), strict=True)) / total


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedCalibration:
    """A validated calibration with its scenario, observed rows and targets."""

    spec: CalibrationSpec
    source: str                   # the calibration file as given (for messages)
    path: Path                    # the calibration file, absolute
    text: str                     # the file's text, for provenance
    scenario_source: str          # the base scenario as named in messages
    scenario_path: Path           # the base scenario, absolute
    scenario: Scenario            # the base scenario (calibration `days` applied)
    scenario_yaml: str            # `scenario.to_yaml()`: what every run starts from
    observed_files: tuple[str, ...]
    targets: tuple[Target, ...]
    left_out: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """The calibration's name."""
        return self.spec.name

    @property
    def days(self) -> float:
        """Run length in days."""
        return float(self.scenario.days)

    def observed_stats(self) -> dict[str, float]:
        """The observed summary statistics, by target key."""
        return {t.key: t.observed for t in self.targets}

    def fingerprint(self) -> str:
        """A hash of what decides the history: the file (less its description and the
        budget's stopping rules), the resolved scenario and the targets."""
        spec = self.spec.model_dump(mode="json")
        spec.pop("description", None)
        spec.pop("scenario", None)
        # how far to go does not change what is done: a resumed calibration may go further
        for key in ("generations", "max_runs", "min_epsilon", "ppc_runs"):
            spec["budget"].pop(key, None)
        blob = json.dumps({"spec": spec, "scenario": self.scenario_yaml,
                           "targets": [t.to_json() for t in self.targets]},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def _display(path: Path) -> str:
    import os.path

    norm = Path(os.path.normpath(path))
    try:
        return str(norm.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(norm)


def _example_value(p: ParameterSpec) -> Any:
    lo, _ = p.prior.range()
    return round(lo) if p.integer else float(lo)


def _trial_value_errors(spec: CalibrationSpec, raw: dict, source: str, scen_source: str,
                        scen_path: Path) -> list[str]:
    """A value from each prior must be valid where it lands (an integer field needs
    `integer: true`; a fraction needs a prior within [0, 1] ...)."""
    from sim.scenario.overrides import apply_overrides

    errors = []
    for i, par in enumerate(spec.parameters):
        value = par.trial_value()
        try:
            parse_scenario(apply_overrides(raw, [(par.path, value)], scen_source),
                           scen_source, base_dir=scen_path.parent)
        except ScenarioError as exc:
            hint = ("; is it a whole-number field (integer: true)?"
                    if not par.integer and "integer" in " ".join(exc.messages) else "")
            first = exc.messages[0].split(": ", 1)[-1]
            errors.append(f"{source}: parameters[{i}].prior: the value {value:g} from the prior "
                          f"is not valid for {par.path}: {first}{hint}")
    return errors


def load_calibration(path: str | Path, *, check_columns: bool = True) -> LoadedCalibration:
    """Read, validate and check a calibration file.

    Checks the schema (unknown keys with did-you-mean, priors, budget), that the scenario exists
    and is valid, that every parameter path names a field of it, that the observed files exist
    and are well formed, and that every output can be compared with at least one observed row
    within the run. With `check_columns`, a one-day run checks that the outputs' daily columns
    exist. Raises `CalibrationError` (one line per problem, naming the file and field)."""
    p = Path(path)
    source = str(path)
    data = read_mapping_file(p, "calibration file", "name, scenario, parameters", CalibrationError)
    try:
        spec = CalibrationSpec.model_validate(data)
    except ValidationError as err:
        raise CalibrationError(format_errors(err, data, source)) from None

    errors: list[str] = []
    for i, par in enumerate(spec.parameters):
        try:
            parse_path(par.path)
        except PathError as exc:
            errors.append(f"{source}: parameters[{i}].path: {exc}")
    scen_path = Path(spec.scenario)
    if not scen_path.is_absolute():
        scen_path = p.parent / scen_path
    scen_source = _display(scen_path)
    if not scen_path.is_file():
        errors.append(f"{source}: scenario: file not found: {scen_source}")
    obs_paths = []
    for j, name in enumerate(spec.observed.files):
        op = Path(name) if Path(name).is_absolute() else p.parent / name
        field_name = "observed.file" + (f"[{j}]" if isinstance(spec.observed.file, list) else "")
        if not op.is_file():
            errors.append(f"{source}: {field_name}: file not found: {_display(op)}")
        obs_paths.append(op)
    if errors:
        raise CalibrationError(errors)

    try:
        raw = load_raw(scen_path)
    except CalibrationError:
        raise
    except ScenarioError as exc:
        raise CalibrationError(exc.messages) from None
    for i, par in enumerate(spec.parameters):
        try:
            set_path(raw, par.path, _example_value(par))
        except PathError as exc:
            errors.append(f"{source}: parameters[{i}].path: {exc} (in {scen_source})")
    if errors:
        raise CalibrationError(errors)
    try:
        scenario = parse_scenario(raw, scen_source, base_dir=scen_path.parent,
                                  _provenance={(): scen_source})
    except ScenarioError as exc:
        raise CalibrationError(exc.messages) from None
    if spec.days is not None:
        scenario = scenario.model_copy(update={"days": float(spec.days)})
    errors += _trial_value_errors(spec, raw, source, scen_source, scen_path)
    if errors:
        raise CalibrationError(errors)

    rows: list[ObservedRow] = []
    for op in obs_paths:
        rows += read_observed(op, _display(op))
    targets, notes, errs = build_targets(spec, rows, scenario.start, run_days(scenario.days))
    errors += [f"{source}: {e}" for e in errs]
    if errors:
        raise CalibrationError(errors)
    loaded = LoadedCalibration(
        spec=spec, source=source, path=p.resolve(), text=p.read_text(encoding="utf-8"),
        scenario_source=scen_source, scenario_path=scen_path.resolve(), scenario=scenario,
        scenario_yaml=scenario.to_yaml(), observed_files=tuple(_display(o) for o in obs_paths),
        targets=tuple(targets), left_out=tuple(notes))
    if check_columns:
        check_output_columns(loaded)
    return loaded


def check_output_columns(cal: LoadedCalibration) -> None:
    """Run the base scenario for one day and check that every output's daily columns exist.
    Raises `CalibrationError` naming the output (with did-you-mean)."""
    from sim.engine.run import run_scenario

    result = run_scenario(cal.scenario.model_copy(deep=True), seed=cal.spec.seed, days=1)
    have = [c for c in result.daily.columns if c != "day"]
    errors = []
    for i, out in enumerate(cal.spec.outputs):
        for j, col in enumerate(out.columns):
            if col not in have:
                where = f"outputs[{i}].model" + (f"[{j}]" if isinstance(out.model, list) else "")
                errors.append(f"{cal.source}: {where}: no daily column '{col}' in the run of "
                              f"{cal.scenario_source}{did_you_mean(col, have)}")
    if errors:
        raise CalibrationError(errors)
