"""Field types and the pydantic base shared by every scenario model."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)

from sim.errors import did_you_mean

_DEFER_REFS = "defer_refs"



def _check_point(value: Any) -> Any:
    """Accept a place name or `[lat, lon]`; reject anything else with one clear message."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("empty place name")
        return value
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise ValueError(f"expected a place name or [lat, lon], got {list(value)!r}")
        lat, lon = float(value[0]), float(value[1])
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise ValueError(f"coordinates must be finite, got [{lat}, {lon}]")
        if not -90.0 <= lat <= 90.0:
            raise ValueError(f"latitude {lat} outside [-90, 90] (points are [lat, lon])")
        if not -180.0 <= lon <= 180.0:
            raise ValueError(f"longitude {lon} outside [-180, 180] (points are [lat, lon])")
        return (lat, lon)
    raise ValueError(f"expected a place name or [lat, lon], got {type(value).__name__} {value!r}")


def _not_bool(value: Any) -> Any:
    """`true`/`false` is not a number: pydantic (lax) would read `strength: true` as 1. (Strict
    mode would also refuse `12.0` for an int and lists for tuples, which files and designs rely
    on, so only booleans are refused.)"""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


def _int64(value: Any) -> Any:
    """Whole numbers end up in numpy int64 columns: refuse what would overflow them."""
    value = _not_bool(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError(f"{_magnitude(value)} does not fit a 64-bit integer")
    return value


#: A place name or a `(lat, lon)` pair in degrees.
PointRef = Annotated[str | tuple[float, float], BeforeValidator(_check_point)]
Name = Annotated[str, Field(min_length=1)]
#: The number types of every file model: `true`/`false` is refused; floats must be finite. A
#: plain `int` or `float` field would take a boolean as 1 or 0 (tests/test_hostile_inputs.py
#: checks that no scenario model has one).
Int = Annotated[int, BeforeValidator(_int64)]
FiniteFloat = Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False)]


class _Model(BaseModel):
    """Base: unknown keys are errors; `class` style aliases may also be filled by field name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _magnitude(value: float) -> str:
    if isinstance(value, int) and abs(value) < 10**12:
        return f"{value:,}"
    if abs(value) < 1e12:
        return f"{value:,.10g}"
    return f"{value:.3g}"


def at_most(limit: float, unit: str, why: str = "") -> BeforeValidator:
    """A check, before pydantic parses the number, that it is at most `limit` (in `unit`):
    absurd magnitudes are refused at validation with their unit, before anything is built,
    instead of overflowing or exhausting memory in the run. `why` says where the limit comes
    from."""

    def check(value: Any) -> Any:
        number = value
        if isinstance(value, str):
            # YAML 1.1 reads `1e30` (no dot) as text, which pydantic then parses as a number
            try:
                number = float(value.strip().replace("_", ""))
            except ValueError:
                return value
        if isinstance(number, (int, float)) and not isinstance(number, bool) and number > limit:
            raise ValueError(f"{_magnitude(number)} {unit} is more than the limit of "
                             f"{_magnitude(limit)} {unit}" + (f" ({why})" if why else ""))
        return value

    return BeforeValidator(check)


def _defer(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(_DEFER_REFS))


# --------------------------------------------------------------------------------------------
# Map
# --------------------------------------------------------------------------------------------

def _unknown(what: str, name: Any, candidates: Iterable[Any]) -> str:
    return f"unknown {what} '{name}'{did_you_mean(name, candidates)}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

