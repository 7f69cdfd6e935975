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


#: A place name or a `(lat, lon)` pair in degrees.
PointRef = Annotated[str | tuple[float, float], BeforeValidator(_check_point)]
Name = Annotated[str, Field(min_length=1)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    """Base: unknown keys are errors; `class` style aliases may also be filled by field name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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

