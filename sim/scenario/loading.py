"""Loading scenario files: safe YAML, `extends:` (dicts merge, lists replace), overrides,
validation and one-line error formatting."""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from sim.errors import PathError, ScenarioError, did_you_mean
from sim.scenario.defaults import units_at_start
from sim.scenario.fields import _DEFER_REFS, _short
from sim.scenario.overrides import (
    _is_model,
    _schema_child,
    _yaml_key,
    apply_overrides,
    set_path,
)
from sim.scenario.paths import _MISSING, Loc, Problem, render_path
from sim.scenario.references import scenario_reference_problems
from sim.scenario.safe_yaml import read_yaml_file
from sim.scenario.schema import TACTIC_MODELS, Scenario

# --------------------------------------------------------------------------------------------
# Loading: YAML, extends, validation, error formatting
# --------------------------------------------------------------------------------------------


def _bundled(folder: str) -> Path:
    """A folder shipped with badia: `sim/bundled/<folder>` in an installed package (the wheel
    maps the checkout's top-level `<folder>/` there, see pyproject.toml), else `<folder>/` of
    the source checkout this module lives in (an editable install or a plain checkout)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "bundled" / folder
    return installed if installed.is_dir() else package.parent / folder


#: The scenarios bundled with badia (the project's `scenarios/` folder; installed with the
#: package as `sim/bundled/scenarios`).
SCENARIO_DIR = _bundled("scenarios")
#: The example experiments and calibration (the project's `experiments/` folder; installed as
#: `sim/bundled/experiments`, beside the scenarios their `scenario: ../scenarios/...` name).
EXPERIMENT_DIR = _bundled("experiments")


def scenario_path(name: str | Path) -> Path:
    """The file a scenario argument names: the path itself, or, when no such file exists and the
    argument is a bare name (`outpost_night_raid`, with or without `.yaml`), that bundled
    scenario in `SCENARIO_DIR`."""
    p = Path(name)
    if p.exists() or len(p.parts) != 1:
        return p
    bundled = SCENARIO_DIR / (p.name if p.suffix in (".yaml", ".yml") else f"{p.name}.yaml")
    return bundled if bundled.is_file() else p


def _read_yaml(path: Path, source: str) -> Any:
    """A scenario (or experiment, calibration) file's data, read with the limits of
    :mod:`sim.scenario.safe_yaml`. Raises `ScenarioError` (one line)."""
    return read_yaml_file(path, source, what="scenario file")


def _merge(base: dict, over: dict, loc: Loc, prov: dict[Loc, str], src: str) -> dict:
    """Deep merge: dicts merge recursively, anything else (lists too) replaces."""
    out = dict(base)
    for k, v in over.items():
        here = (*loc, k)
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            # the merged mapping is now "last touched" by src; its untouched keys keep the
            # file they came from, so push that origin down one level first
            for kk in out[k]:
                if kk not in v and ((*here, kk)) not in prov:
                    prov[(*here, kk)] = _origin(prov, (*here, kk), src)[0]
            prov[here] = src
            out[k] = _merge(out[k], v, here, prov, src)
        else:
            replaced = out.get(k)
            out[k] = copy.deepcopy(v)
            if isinstance(replaced, dict):
                _drop_provenance(prov, here, replaced)
            prov[here] = src
    return out


def _drop_provenance(prov: dict[Loc, str], loc: Loc, node: dict) -> None:
    """Forget where the keys under `loc` came from (`node`, the mapping there, is replaced).

    Provenance is only ever recorded for mapping keys, so walking the replaced mapping finds
    every entry: linear in its size, where scanning all of `prov` for each replaced key made a
    mapping of many keys quadratic."""
    for key, value in node.items():
        here = (*loc, key)
        prov.pop(here, None)
        if isinstance(value, dict):
            _drop_provenance(prov, here, value)


def _source_name(path: Path) -> str:
    text = str(path)
    return text


def _load_tree(path: Path, source: str, stack: list[Path]) -> tuple[dict, dict[Loc, str]]:
    """Read a file and everything it extends; return merged raw data and key provenance."""
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join([str(p.name) for p in stack[stack.index(resolved):]] + [path.name])
        raise ScenarioError(f"{source}: extends: cycle {chain}")
    data = _read_yaml(path, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a mapping of keys (name, map, ...), "
                            f"got {type(data).__name__}")
    prov: dict[Loc, str] = {(): source}
    prov.update({(k,): source for k in data})
    ext = data.pop("extends", None)
    prov.pop(("extends",), None)
    if ext is None:
        return data, prov
    if not isinstance(ext, str) or not ext.strip():
        raise ScenarioError(f"{source}: extends: expected a file name, got {_short(ext)}")
    base_path = Path(ext) if Path(ext).is_absolute() else path.parent / ext
    base_source = _source_name(Path(_normpath(base_path)))
    if not base_path.exists():
        raise ScenarioError(f"{source}: extends: file not found: {base_source}")
    base, base_prov = _load_tree(base_path, base_source, [*stack, resolved])
    base_prov[()] = source
    merged = _merge(base, data, (), base_prov, source)
    return merged, base_prov


def _normpath(p: Path) -> str:
    import os.path

    return os.path.normpath(str(p))


def _origin(prov: dict[Loc, str] | None, loc: Loc, source: str) -> tuple[str, str]:
    """(file to name, note) for an error at `loc`: the file that set the deepest enclosing key."""
    if not prov:
        return source, ""
    for n in range(len(loc), -1, -1):
        src = prov.get(tuple(loc[:n]))
        if src is not None:
            if src.startswith("--set "):
                return source, f" (from {src})"
            return src, ""
    return source, ""


def _data_loc(loc: tuple[Any, ...], data: Any) -> tuple[Loc, Any]:
    """Map a pydantic error loc onto the raw data: drop union-member labels pydantic inserts
    (e.g. the tactic tag); return the data path and the node the error is about."""
    out: list[Any] = []
    node = data
    for i, seg in enumerate(loc):
        last = i == len(loc) - 1
        in_dict = isinstance(node, dict) and seg in node
        in_list = isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node)
        if in_dict or in_list:
            out.append(seg)
            node = node[seg]
        elif last:
            out.append(seg)
            node = _MISSING
        # else: a union member label (pydantic adds them to locs), not part of the data path
    return tuple(out), node


def _model_at(loc: Loc, data: Any) -> list[Any]:
    """Schema types at a data path (used for 'did you mean' on unknown keys)."""
    tps: list[Any] = [Scenario]
    node = data
    for seg in loc:
        if isinstance(seg, int):
            tps, _ = _schema_child(tps, 0)
        else:
            tps, _ = _schema_child(tps, str(seg))
        node = node[seg] if isinstance(node, (dict, list)) else None
        # a tactic dict names its own model through its `kind`
        if isinstance(node, dict) and isinstance(node.get("kind"), str):
            model = TACTIC_MODELS.get(node["kind"])
            if model is not None and model in tps:
                tps = [model]
    return tps


def _format_pydantic(err: ValidationError, data: dict, source: str,
                     prov: dict[Loc, str] | None) -> list[str]:
    lines: list[str] = []
    errors = err.errors(include_url=False)
    for e in errors[:MAX_PROBLEM_LINES]:
        loc, _ = _data_loc(tuple(e["loc"]), data)
        etype = e["type"]
        msg = e["msg"]
        if etype == "extra_forbidden":
            key = loc[-1] if loc else "?"
            parent = loc[:-1]
            cands: list[str] = []
            for t in _model_at(parent, data):
                if _is_model(t):
                    cands += [_yaml_key(t, n) for n in t.model_fields]
            msg = f"unknown key '{key}'{did_you_mean(key, cands)}"
            loc = parent
        elif etype == "missing":
            msg = "missing required field"
        elif etype == "union_tag_invalid":
            tag = e.get("ctx", {}).get("tag")
            kinds = sorted(TACTIC_MODELS)
            hint = did_you_mean(tag, kinds) or f" (one of {', '.join(kinds)})"
            msg = f"unknown tactic kind '{tag}'{hint}"
            loc = (*loc, "kind")
        elif etype == "union_tag_not_found":
            msg = f"missing 'kind' (one of {', '.join(sorted(TACTIC_MODELS))})"
        elif etype == "literal_error":
            expected = re.findall(r"'([^']*)'", str(e.get("ctx", {}).get("expected", "")))
            got = e.get("input")
            msg = (f"{_short(got)} is not one of {', '.join(expected)}"
                   f"{did_you_mean(got, expected) if isinstance(got, str) else ''}")
        elif etype in ("value_error", "assertion_error"):
            msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
        elif etype.startswith(("model_type", "model_attributes_type")):
            msg = f"expected a mapping of keys, got {_short(e.get('input'))}"
        else:
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg = f"{msg} (got {_short(e['input'])})"
        src, note = _origin(prov, loc, source)
        path = render_path(loc)
        lines.append(f"{src}: {path}: {msg}{note}" if path else f"{src}: {msg}{note}")
    if len(errors) > MAX_PROBLEM_LINES:
        lines.append(f"{source}: ... and {len(errors) - MAX_PROBLEM_LINES:,} more problems")
    return lines


def _format_problems(problems: list[Problem], source: str,
                     prov: dict[Loc, str] | None) -> list[str]:
    lines = []
    for loc, msg in problems:
        src, note = _origin(prov, loc, source)
        path = render_path(loc)
        lines.append(f"{src}: {path}: {msg}{note}" if path else f"{src}: {msg}{note}")
    return lines


def parse_scenario(data: dict, source: str, base_dir: str | Path | None = None,
                   _provenance: dict[Loc, str] | None = None) -> Scenario:
    """Validate a raw scenario dict into a Scenario, checking every reference.

    `source` names the file in messages. An `extends:` key is resolved relative to `base_dir`
    (default: the current directory). Raises `ScenarioError` listing every problem found."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a mapping of keys (name, map, ...), "
                            f"got {type(data).__name__}")
    prov = _provenance
    if data.get("extends") is not None:
        base = Path(base_dir) if base_dir is not None else Path(".")
        ext = data["extends"]
        if not isinstance(ext, str) or not ext.strip():
            raise ScenarioError(f"{source}: extends: expected a file name, got {_short(ext)}")
        base_path = Path(ext) if Path(ext).is_absolute() else base / ext
        base_source = _normpath(base_path)
        if not base_path.exists():
            raise ScenarioError(f"{source}: extends: file not found: {base_source}")
        base_data, prov = _load_tree(base_path, base_source, [])
        own = {k: v for k, v in data.items() if k != "extends"}
        prov[()] = source
        data = _merge(base_data, own, (), prov, source)
    try:
        scenario = Scenario.model_validate(data, context={_DEFER_REFS: True})
    except ValidationError as e:
        raise ScenarioError(_format_pydantic(e, data, source, prov)) from None
    problems = scenario_reference_problems(scenario, include_map=True)
    lines = _format_problems(problems, source, prov)
    lines += _event_value_problems(scenario, data, source, prov)
    if lines:
        raise ScenarioError(_at_most_lines(lines, source))
    return scenario


#: Most problem lines reported for one file: a file of 100,000 bad items is not helped by
#: 100,000 lines.
MAX_PROBLEM_LINES = 100
#: Most work spent checking event values, in values validated: each `set` entry is checked by
#: validating the scenario (less its events) with the value in place. About 2 s; a scenario of
#: 5,000 values may have 400 event settings.
MAX_EVENT_CHECK_VALUES = 2_000_000


def _at_most_lines(lines: list[str], source: str) -> list[str]:
    if len(lines) <= MAX_PROBLEM_LINES:
        return lines
    return [*lines[:MAX_PROBLEM_LINES],
            f"{source}: ... and {len(lines) - MAX_PROBLEM_LINES:,} more problems"]


def _count_values(node: Any) -> int:
    n, stack = 0, [node]
    while stack:
        item = stack.pop()
        n += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return n


def _event_value_problems(s: Scenario, data: dict, source: str,
                          prov: dict[Loc, str] | None) -> list[str]:
    """Each event's values must validate where they land (apply to a copy, re-validate)."""
    lines: list[str] = []
    base = {k: v for k, v in data.items() if k != "events"}   # events were validated already
    settings = sum(len(ev.set) for ev in s.events)
    if settings:
        size = _count_values(base)
        if settings * size > MAX_EVENT_CHECK_VALUES:
            src, note = _origin(prov, ("events",), source)
            return [f"{src}: events: {settings:,} event settings on a scenario of {size:,} "
                    f"values are too many to check (at most {MAX_EVENT_CHECK_VALUES:,} "
                    f"settings x values){note}"]
    for i, ev in enumerate(s.events):
        for path, value in ev.set.items():
            loc: Loc = ("events", i, "set", f'"{path}"')
            try:
                target = data if path.lstrip().startswith("events") else base
                trial = set_path(target, path, value)
                Scenario.model_validate(trial, context={_DEFER_REFS: True})
            except PathError:
                continue  # already reported by the reference checks
            except ValidationError as e:
                src, note = _origin(prov, loc, source)
                for err in e.errors(include_url=False):
                    where, _ = _data_loc(tuple(err["loc"]), trial)
                    msg = re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
                    lines.append(f"{src}: {render_path(loc)}: sets {render_path(where)} to "
                                 f"{_short(value)}: {msg}{note}")
    return lines


def load_scenario(path: str | Path, overrides: Iterable[Any] | Mapping[str, Any] = ()
                  ) -> Scenario:
    """Load, merge (`extends`), override (`--set`), validate and reference-check a scenario file.

    Raises `ScenarioError` (one line per problem, each naming the file and field path)."""
    p = scenario_path(path)
    source = str(path) if p == Path(path) else str(p)
    data, prov = _load_tree(p, source, [])
    if overrides:
        data = apply_overrides(data, overrides, source, prov)
    return parse_scenario(data, source, base_dir=p.parent, _provenance=prov)


def load_raw(path: str | Path) -> dict:
    """The merged raw dict of a scenario file (extends resolved, not validated)."""
    data, _ = _load_tree(Path(path), str(path), [])
    return data


def main_validate(paths: Sequence[str | Path], overrides: Sequence[str] = ()) -> int:
    """`badia validate FILE...`: print one line per problem to stderr, 'ok' lines to stdout.

    Returns the exit code: 0 if every file is valid, 1 otherwise."""
    bad = 0
    for path in paths:
        try:
            s = load_scenario(path, overrides)
        except ScenarioError as e:
            bad += 1
            for line in e.messages:
                print(line, file=sys.stderr)
        except Exception as e:
            bad += 1
            print(f"{path}: internal error while validating: {type(e).__name__}: {e}",
                  file=sys.stderr)
        else:
            print(f"{path}: ok ({s.name}: {len(s.map.places)} places, "
                  f"{units_at_start(s)} units, {s.days:g} days)")
    return 1 if bad else 0
