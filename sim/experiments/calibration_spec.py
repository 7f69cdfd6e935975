"""Calibration files: the format. Which scenario parameters to fit (with their priors), to
which observed rows (`observed`), through which model outputs (`outputs`), with what budget.

A calibration file is one YAML file (format in docs/calibration.md), loaded with
`yaml.safe_load` (`sim.experiments.calibration_data.load_calibration`) and validated with these
pydantic models: unknown keys are errors, and every problem is one line `<file>: <field.path>:
<message>` in a `CalibrationError`. Nothing here imports pyabc: worker processes import it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.errors import did_you_mean
from sim.scenario.fields import _short
from sim.scenario.loading import _data_loc
from sim.scenario.paths import render_path

#: The governorates of the central-Syria theatre (experiments/observed/README.md): the region a
#: model output stands for unless it names its own `regions`.
THEATRE = ("Homs", "Deir ez-Zor", "Raqqa", "Hama", "Aleppo")
#: aggregate -> (statistic, window): `sum` of the daily values, number of `days` with a value of
#: at least `at_least`, or the `longest_run` of such days; over each row's whole period, or per
#: calendar month of it.
AGGREGATES: dict[str, tuple[str, str]] = {
    "total": ("sum", "period"),
    "month_sum": ("sum", "month"),
    "days": ("days", "period"),
    "month_days": ("days", "month"),
    "longest_run": ("longest_run", "period"),
    "month_longest_run": ("longest_run", "month"),
}
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
_UNITS = (("_per_hour", "per h"), ("_kmh", "km/h"), ("_km", "km"), ("_hours", "h"),
          ("_days", "days"), ("_fraction", "fraction"), ("strength", "fighters"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------
# The file format
# --------------------------------------------------------------------------------------------


class PriorSpec(_Model):
    """One of `uniform: [lo, hi]`, `loguniform: [lo, hi]` (lo > 0) or `normal: [mean, sd]`."""

    uniform: list[FiniteFloat] | None = None
    loguniform: list[FiniteFloat] | None = None
    normal: list[FiniteFloat] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> PriorSpec:
        given = [k for k in ("uniform", "loguniform", "normal") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of uniform: [lo, hi], loguniform: [lo, hi] or "
                             "normal: [mean, sd]")
        kind = given[0]
        args = getattr(self, kind)
        what = "[mean, sd]" if kind == "normal" else "[lo, hi]"
        if len(args) != 2:
            raise ValueError(f"{kind}: expected two numbers {what}, got {_short(args)}")
        a, b = args
        if kind == "normal" and b <= 0:
            raise ValueError(f"normal: the sd must be positive, got {b:g}")
        if kind != "normal" and not a < b:
            raise ValueError(f"{kind}: lo ({a:g}) must be less than hi ({b:g})")
        if kind == "loguniform" and a <= 0:
            raise ValueError(f"loguniform: lo must be positive, got {a:g}")
        return self

    @property
    def kind(self) -> str:
        """uniform, loguniform or normal."""
        return next(k for k in ("uniform", "loguniform", "normal") if getattr(self, k) is not None)

    @property
    def args(self) -> tuple[float, float]:
        """(lo, hi), or (mean, sd) for a normal prior."""
        a, b = getattr(self, self.kind)
        return float(a), float(b)

    def range(self) -> tuple[float, float]:
        """The prior range as reported: [lo, hi], or mean -/+ 1.96 sd (the central 95%) for a
        normal prior."""
        a, b = self.args
        return (a - 1.96 * b, a + 1.96 * b) if self.kind == "normal" else (a, b)

    def describe(self) -> str:
        """E.g. `uniform(2, 12)`."""
        a, b = self.args
        return f"{self.kind}({a:g}, {b:g})"


class ParameterSpec(_Model):
    """A scenario field to fit: its override path, prior, and whether it takes whole numbers."""

    path: Annotated[str, Field(min_length=1)]
    prior: PriorSpec
    integer: bool = False
    unit: str | None = None    # axis label unit (default: from the path, e.g. `_km` -> km)

    def trial_value(self) -> float | int:
        """A value from inside the prior, with a fractional part unless `integer` (used to
        check that the scenario takes the parameter's values)."""
        a, b = self.prior.args
        if self.prior.kind == "normal":
            v = a + 0.37 * b
        elif self.prior.kind == "loguniform":
            v = a * (b / a) ** 0.37
        else:
            v = a + 0.37 * (b - a)
        return round(v) if self.integer else float(v)

    @property
    def label_unit(self) -> str:
        """`unit`, or the unit in the path's last name (`night_sensor_range_km` -> km)."""
        if self.unit is not None:
            return self.unit
        last = re.split(r"\.(?![^\[]*\])", self.path)[-1]
        for suffix, unit in _UNITS:
            if last.endswith(suffix):
                return unit
        return ""

    @model_validator(mode="after")
    def _integer_prior(self) -> ParameterSpec:
        if self.integer and self.prior.kind != "normal":
            lo, hi = self.prior.args
            if not (lo.is_integer() and hi.is_integer()):
                raise ValueError(f"integer: true needs whole-number prior bounds, got "
                                 f"{lo:g}..{hi:g}")
            if self.prior.kind == "loguniform" and lo < 1:
                raise ValueError(f"integer: true with loguniform needs lo >= 1, got {lo:g}")
        return self


class ObservedSpec(_Model):
    """Which observed rows to fit: CSV file(s) relative to the calibration file, and `use`."""

    file: str | list[str]
    use: Literal["fit", "context", "all"] = "fit"
    #: a window (a month, a year, a period) the run covers less than this fraction of is left
    #: out; a partly covered one compares the model's value scaled up to the whole window
    min_coverage: float = Field(default=0.5, gt=0, le=1)

    @field_validator("file")
    @classmethod
    def _files(cls, v: str | list[str]) -> str | list[str]:
        files = [v] if isinstance(v, str) else v
        if not files or any(not f.strip() for f in files):
            raise ValueError("expected a CSV file name or a non-empty list of them")
        return v

    @property
    def files(self) -> list[str]:
        """The observed CSV files as a list."""
        return [self.file] if isinstance(self.file, str) else list(self.file)


class OutputSpec(_Model):
    """How a model output stands for an observed quantity."""

    quantity: Annotated[str, Field(min_length=1)]
    model: str | list[str]           # daily column(s); several are summed day by day
    aggregate: Literal["total", "month_sum", "days", "month_days", "longest_run",
                       "month_longest_run"]
    scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)   # multiplies sums
    slack: float = Field(default=2.0, ge=1)       # factor allowed past a min (or below a max)
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)  # share of the distance
    at_least: float = Field(default=1.0, gt=0, allow_inf_nan=False)   # for days / longest_run
    regions: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)

    @field_validator("model")
    @classmethod
    def _columns(cls, v: str | list[str]) -> str | list[str]:
        cols = [v] if isinstance(v, str) else v
        if not cols or any(not c.strip() for c in cols):
            raise ValueError("expected a daily column name or a non-empty list of them")
        if len(set(cols)) != len(cols):
            raise ValueError("a column is listed twice")
        return v

    @property
    def columns(self) -> tuple[str, ...]:
        """The daily columns, as a tuple."""
        return (self.model,) if isinstance(self.model, str) else tuple(self.model)

    @property
    def region_set(self) -> frozenset[str]:
        """The regions the output stands for (default: the whole theatre)."""
        return frozenset(self.regions or THEATRE)


class BudgetSpec(_Model):
    """ABC-SMC budget: particles per generation, generations, stop threshold, run cap."""

    population: int = Field(default=100, ge=2)
    generations: int = Field(default=5, ge=1)
    min_epsilon: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    max_runs: int | None = Field(default=None, ge=1)   # model runs, replicates included
    replicates: int = Field(default=1, ge=1)           # runs averaged per particle
    ppc_runs: int = Field(default=20, ge=2)            # posterior-predictive runs

    @model_validator(mode="after")
    def _room_for_a_generation(self) -> BudgetSpec:
        need = 2 * self.population * self.replicates
        if self.max_runs is not None and self.max_runs < need:
            raise ValueError(f"max_runs ({self.max_runs}) leaves no room for the prior sample "
                             f"and one generation: at least 2 x population x replicates = "
                             f"{need}")
        return self


class CalibrationSpec(_Model):
    """A calibration file (see docs/calibration.md)."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    scenario: Annotated[str, Field(min_length=1)]     # relative to the calibration file
    days: FiniteFloat | None = Field(default=None, gt=0)
    seed: int = Field(default=0, ge=0)
    parameters: list[ParameterSpec] = Field(min_length=1)
    observed: ObservedSpec
    outputs: list[OutputSpec] = Field(min_length=1)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError(f"use letters, digits, '_', '.' and '-' (it names the results "
                             f"folder), got {v!r}")
        return v

    @field_validator("parameters")
    @classmethod
    def _unique_paths(cls, v: list[ParameterSpec]) -> list[ParameterSpec]:
        seen: set[str] = set()
        for p in v:
            if p.path in seen:
                raise ValueError(f"path {p.path!r} is listed twice")
            seen.add(p.path)
        return v


# --------------------------------------------------------------------------------------------
# Error messages
# --------------------------------------------------------------------------------------------


def _unwrap_models(ann: Any) -> list[type[BaseModel]]:
    """Pydantic models inside an annotation (through Optional, list, Annotated)."""
    out: list[type[BaseModel]] = []
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    for arg in getattr(ann, "__args__", ()) or ():
        out += _unwrap_models(arg)
    meta = getattr(ann, "__origin__", None)
    if meta is not None and not out:
        out += _unwrap_models(meta)
    return out


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the calibration model at a data path (for 'did you mean')."""
    models: list[type[BaseModel]] = [CalibrationSpec]
    for seg in loc:
        if isinstance(seg, int):
            continue
        nxt: list[type[BaseModel]] = []
        for m in models:
            f = m.model_fields.get(str(seg))
            if f is not None:
                nxt += _unwrap_models(f.annotation)
        models = nxt
    return [name for m in models for name in m.model_fields]


def format_errors(err: ValidationError, data: dict, source: str) -> list[str]:
    """Pydantic errors as `<file>: <path>: <message>` lines (did-you-mean on unknown keys)."""
    lines: list[str] = []
    for e in err.errors(include_url=False):
        loc, _ = _data_loc(tuple(e["loc"]), data)
        etype, msg = e["type"], e["msg"]
        if etype == "extra_forbidden":
            key, loc = loc[-1] if loc else "?", loc[:-1]
            msg = f"unknown key '{key}'{did_you_mean(key, _fields_at(loc))}"
        elif etype == "missing":
            msg = "missing required field"
        elif etype in ("value_error", "assertion_error"):
            msg = msg.removeprefix("Value error, ").removeprefix("Assertion error, ")
        elif etype.startswith(("model_type", "model_attributes_type", "dict_type")):
            msg = f"expected a mapping of keys, got {_short(e.get('input'))}"
        elif etype == "literal_error":
            msg = f"{msg} (got {_short(e.get('input'))})"
        elif "input" in e and not isinstance(e["input"], (dict, list)):
            msg = f"{msg} (got {_short(e['input'])})"
        path = render_path(loc)
        lines.append(f"{source}: {path}: {msg}" if path else f"{source}: {msg}")
    return lines
