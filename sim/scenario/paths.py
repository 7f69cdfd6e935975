"""The path grammar shared by `--set`, scenario events and experiment factors:
`units[kind=patrol].count`, `factions.government.border_security`. Parsing and rendering only."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from sim.errors import PathError

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def render_path(loc: Iterable[Any]) -> str:
    """`('units', 0, 'strength')` -> `units[0].strength`."""
    out = ""
    for seg in loc:
        if isinstance(seg, int) and not isinstance(seg, bool):
            out += f"[{seg}]"
        elif isinstance(seg, Selector):
            out += f"[{seg.field}={seg.value}]"
        else:
            out += ("." if out else "") + str(seg)
    return out


# --------------------------------------------------------------------------------------------
# Paths: parse, walk the schema, resolve, set (shared by --set, events and experiment factors)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """`[field=value]`: every list element whose `field` equals `value` (compared as YAML)."""

    field: str
    value: str

    def matches(self, element: Any) -> bool:
        """True if `element` (a dict or a model) has `field` equal to `value`."""
        actual = _get_field(element, self.field, _MISSING)
        if actual is _MISSING:
            return False
        if isinstance(actual, str):
            return actual == self.value
        try:
            want = yaml.safe_load(self.value)
        except yaml.YAMLError:
            return False
        if isinstance(actual, tuple):
            actual = list(actual)
        return bool(actual == want)


Segment = str | int | Selector
_MISSING = object()
_PATH_TOKEN = re.compile(r"\[([^\[\]]*)\]|([^.\[\]]+)|(\.)")


def parse_path(path: str) -> list[Segment]:
    """Parse `a.b[2].c` / `units[kind=border_post].strength` into segments.

    Keys are str, `[n]` is an int index, `[field=value]` a `Selector`. Raises `PathError`."""
    if not isinstance(path, str) or not path.strip():
        raise PathError(f"empty path {path!r}")
    segs: list[Segment] = []
    pos = 0
    expect_key = True   # after a '.' (or at the start) a key must follow
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if m is None:
            raise PathError(f"cannot parse path {path!r} at column {pos + 1}")
        bracket, key, dot = m.groups()
        if dot is not None:
            if expect_key:
                raise PathError(f"cannot parse path {path!r}: empty key at column {pos + 1}")
            expect_key = True
        elif key is not None:
            if not expect_key:
                raise PathError(f"cannot parse path {path!r}: missing '.' at column {pos + 1}")
            segs.append(key.strip())
            expect_key = False
        else:
            if expect_key:
                raise PathError(f"cannot parse path {path!r}: '[' must follow a key")
            inner = bracket.strip()
            if re.fullmatch(r"\d+", inner):
                segs.append(int(inner))
            elif "=" in inner:
                field, _, value = inner.partition("=")
                if not field.strip():
                    raise PathError(f"cannot parse path {path!r}: selector needs field=value")
                segs.append(Selector(field.strip(), value.strip()))
            else:
                raise PathError(f"cannot parse path {path!r}: [{inner}] must be an index >= 0 "
                                "or field=value")
        pos = m.end()
    if expect_key:
        raise PathError(f"cannot parse path {path!r}: ends with '.'")
    return segs


def _get_field(node: Any, key: str, default: Any = _MISSING) -> Any:
    if isinstance(node, Mapping):
        return node.get(key, default)
    if isinstance(node, BaseModel):
        name = _field_key(type(node), key)
        if name is not None:
            return getattr(node, name)
        return default
    return default


def _field_key(model: type[BaseModel], key: str) -> str | None:
    """The field name for a key given by name or alias, or None."""
    for name, f in model.model_fields.items():
        if key == name or key == f.alias:
            return name
    return None
