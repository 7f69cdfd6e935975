"""Paths against the scenario schema: resolve them in a scenario, set them in a raw dict, apply
`--set` overrides. Pure functions; bad paths raise PathError with a did-you-mean."""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Union

import yaml
from pydantic import (
    BaseModel,
)

from sim.errors import PathError, ScenarioError, did_you_mean
from sim.scenario.fields import _short
from sim.scenario.paths import (
    _MISSING,
    Loc,
    Segment,
    _field_key,
    _get_field,
    parse_path,
    render_path,
)
from sim.scenario.safe_yaml import parse_yaml
from sim.scenario.schema import Scenario


def _unwrap(tp: Any) -> list[Any]:
    """Concrete alternatives of an annotation: strips Annotated / Optional / unions."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(tp):
            if a is not type(None):
                out += _unwrap(a)
        return out
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _yaml_key(model: type[BaseModel], name: str) -> str:
    alias = model.model_fields[name].alias
    return alias or name


def _schema_child(tps: list[Any], seg: Segment) -> tuple[list[Any], list[str]]:
    """Types reachable from `tps` through `seg`, and key names to suggest when none are."""
    child: list[Any] = []
    cands: list[str] = []
    for tp in tps:
        if tp is Any:
            child.append(Any)
            continue
        origin = typing.get_origin(tp)
        if isinstance(seg, str):
            if _is_model(tp):
                name = _field_key(tp, seg)
                cands += [_yaml_key(tp, n) for n in tp.model_fields]
                if name is not None:
                    child += _unwrap(tp.model_fields[name].annotation)
            elif origin is dict:
                child += _unwrap(typing.get_args(tp)[1])
        elif origin is list:
            child += _unwrap(typing.get_args(tp)[0])
        elif origin is tuple and isinstance(seg, int):
            args = [a for a in typing.get_args(tp) if a is not Ellipsis]
            if args:
                child += _unwrap(args[min(seg, len(args) - 1)])
    return child, list(dict.fromkeys(cands))


def resolve_path(obj: Any, path: str | Sequence[Segment]) -> list[tuple[Loc, Any]]:
    """Every concrete location `path` names in `obj` (a raw dict or a Scenario) and its value.

    Selectors expand to the matching indices, e.g. `units[kind=qrf].strength` ->
    `[(('units', 4, 'strength'), 20), ...]`. Pure. Raises `PathError` (with did-you-mean) when a
    key is not in the schema, an index is out of range, or a selector matches nothing. A known
    optional field that is absent resolves to None."""
    segs = parse_path(path) if isinstance(path, str) else list(path)
    if not segs:
        raise PathError("empty path")
    targets: list[tuple[Loc, Any, list[Any]]] = [((), obj, [Scenario])]
    for seg in segs:
        nxt: list[tuple[Loc, Any, list[Any]]] = []
        for loc, node, tps in targets:
            child_tps, cands = _schema_child(tps, seg)
            where = render_path(loc) or "the scenario"
            if isinstance(seg, str):
                if not child_tps:
                    raise PathError(f"unknown key '{seg}' in {where}{did_you_mean(seg, cands)}",
                                    loc)
                is_dict = isinstance(node, Mapping) and not _is_model_container(tps)
                value = _get_field(node, seg, _MISSING)
                if value is _MISSING:
                    if is_dict:
                        raise PathError(f"no '{seg}' in {where}{did_you_mean(seg, list(node))}",
                                        loc)
                    if node is not None and not isinstance(node, (Mapping, BaseModel)):
                        raise PathError(f"{where} is not a mapping", loc)
                    value = None  # a known optional field that is absent
                nxt.append(((*loc, seg), value, child_tps))
            else:
                if not child_tps or not isinstance(node, (list, tuple)):
                    raise PathError(f"{where} is not a list", loc)
                if isinstance(seg, int):
                    if seg >= len(node):
                        raise PathError(f"index {seg} out of range ({where} has {len(node)} "
                                        "items)", loc)
                    nxt.append(((*loc, seg), node[seg], child_tps))
                else:
                    elem_fields = _schema_child(child_tps, seg.field)
                    if not elem_fields[0]:
                        raise PathError(f"selector field '{seg.field}' is not a field of "
                                        f"{where} items{did_you_mean(seg.field, elem_fields[1])}",
                                        loc)
                    hits = [((*loc, j), el, child_tps) for j, el in enumerate(node)
                            if seg.matches(el)]
                    if not hits:
                        raise PathError(f"no item of {where} has {seg.field}={seg.value}", loc)
                    nxt += hits
        targets = nxt
    return [(loc, value) for loc, value, _ in targets]


def _is_model_container(tps: list[Any]) -> bool:
    return any(_is_model(t) for t in tps)


def _parse_override(item: Any) -> tuple[str, Any]:
    if isinstance(item, str):
        depth = 0
        for k, ch in enumerate(item):
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
            elif ch == "=" and depth == 0:
                path, text = item[:k].strip(), item[k + 1:]
                if not text.strip():
                    return path, None
                try:
                    return path, parse_yaml(text, "value")
                except ScenarioError as e:
                    problem = e.messages[0].removeprefix("value: ")
                    problem = problem.replace("YAML syntax error: ", "")
                    raise PathError(f"value {_short(text.strip())} is not valid YAML "
                                    f"({problem})") from None
        raise PathError(f"expected path=value, got {item!r}")
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1]
    raise PathError(f"override {item!r}: expected 'path=value' or (path, value)")


def _override_label(item: Any) -> str:
    """The path part of an override, for messages."""
    if isinstance(item, str):
        depth = 0
        for k, ch in enumerate(item):
            depth += (ch == "[") - (ch == "]")
            if ch == "=" and depth == 0:
                return item[:k].strip()
        return item.strip()
    if isinstance(item, (tuple, list)) and item:
        return str(item[0])
    return repr(item)


def _set_one(root: dict, segs: list[Segment], value: Any) -> list[Loc]:
    """Set `value` at every location `segs` names in the raw dict `root`; return them.

    Missing intermediate model fields are created as {}; new list items are not."""
    parent_loc = resolve_path(root, segs[:-1]) if len(segs) > 1 else [((), root)]
    # walk the schema down to the parent to know its type
    tps: list[Any] = [Scenario]
    for seg in segs[:-1]:
        tps, _ = _schema_child(tps, seg)
    last = segs[-1]
    child_tps, cands = _schema_child(tps, last)
    done: list[Loc] = []
    for loc, _ in parent_loc:
        node = _ensure_container(root, loc)
        where = render_path(loc) or "the scenario"
        if isinstance(last, str):
            if not child_tps:
                raise PathError(f"unknown key '{last}' in {where}{did_you_mean(last, cands)}", loc)
            if not isinstance(node, dict):
                raise PathError(f"{where} is not a mapping", loc)
            key = last
            model = next((t for t in tps if _is_model(t) and _field_key(t, last)), None)
            if model is not None:
                name = _field_key(model, last)
                assert name is not None
                key = _yaml_key(model, name)
                # one spelling only, or pydantic would see both `class` and `cls`
                for other in (name, model.model_fields[name].alias):
                    if other and other != key:
                        node.pop(other, None)
            node[key] = copy.deepcopy(value)
            done.append((*loc, key))
        else:
            if not child_tps or not isinstance(node, list):
                raise PathError(f"{where} is not a list", loc)
            if isinstance(last, int):
                if last >= len(node):
                    raise PathError(f"index {last} out of range ({where} has {len(node)} items)",
                                    loc)
                node[last] = copy.deepcopy(value)
                done.append((*loc, last))
            else:
                hits = [j for j, el in enumerate(node) if last.matches(el)]
                if not hits:
                    raise PathError(f"no item of {where} has {last.field}={last.value}", loc)
                for j in hits:
                    node[j] = copy.deepcopy(value)
                    done.append((*loc, j))
    return done


def _ensure_container(root: dict, loc: Loc) -> Any:
    """Walk `loc` in `root`, creating absent (or null) mapping fields as {}."""
    node: Any = root
    for seg in loc:
        if isinstance(node, dict):
            if node.get(seg) is None:
                node[seg] = {}
            node = node[seg]
        else:
            node = node[seg]
    return node


def set_path(data: dict, path: str | Sequence[Segment], value: Any) -> dict:
    """A copy of the raw scenario dict with `path` set to `value` (pure). Raises `PathError`."""
    out = copy.deepcopy(data)
    segs = parse_path(path) if isinstance(path, str) else list(path)
    _set_one(out, segs, value)
    return out


def apply_overrides(
    data: dict,
    overrides: Iterable[Any] | Mapping[str, Any],
    source: str,
    _provenance: dict[Loc, str] | None = None,
) -> dict:
    """Apply overrides to a raw (merged) scenario dict before validation; returns a new dict.

    `overrides` is a mapping `{path: value}`, or an iterable of `"path=value"` strings (value
    parsed with `yaml.safe_load`) or `(path, value)` pairs. Setting an absent optional field is
    fine; unknown keys, out-of-range indices and empty selectors raise `ScenarioError` with one
    line per bad override, naming `source`."""
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    items = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    errors: list[str] = []
    for item in items:
        text = item if isinstance(item, str) else None
        try:
            path, value = _parse_override(item)
            text = text or f"{path}={_short(value)}"
            segs = parse_path(path)
            for loc in _set_one(out, segs, value):
                if _provenance is not None:
                    for k in [k for k in _provenance if k[: len(loc)] == loc]:
                        del _provenance[k]
                    _provenance[loc] = f"--set {text}"
        except PathError as e:
            errors.append(f"{source}: {_override_label(item)}: bad override: {e}")
    if errors:
        raise ScenarioError(errors)
    return out


def _yaml_problem(e: yaml.YAMLError) -> str:
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return str(problem)
