"""JSON Schema of badia's YAML files (scenarios, experiments, calibrations) for editors.

`badia schema [scenario|experiment|calibration] > file.json` prints what `json_schema` makes
from the file's pydantic model (`sim.scenario.schema.Scenario`, `sim.experiments.design.
Experiment`, `sim.experiments.calibration_spec.CalibrationSpec`), so the schema is always the
models' own: field names, types, ranges, enums, defaults and docstrings. An editor with a YAML
language server (VS Code's YAML extension: `# yaml-language-server: $schema=<file.json>` on a
file's first line) then completes keys and flags mistakes while typing. The loader stays the
judge: cross-references (unknown place names, units of a missing faction) and a few rules a
validator checks in code are not in a schema.

What the schema adds to `model_json_schema()`:

- `$schema`: JSON Schema 2020-12, the dialect pydantic writes (`$defs`, `prefixItems`).
- Dates and times as YAML writes them: `start: 2018-06-01T18:00` (no seconds, no offset) is a
  valid scenario start, so `format: date-time` (RFC 3339, which wants both) becomes a pattern.
- Shorthands that a model accepts through a before-validator, e.g. an experiment's
  `design: full_factorial` for `design: {kind: full_factorial}` (`shorthands`).
- `extends:` (a scenario that changes another): such a file holds only what differs, so with
  `extends` present nothing is required in the mappings that merge with the base file (dicts
  merge, lists replace: an item of a list is still a whole item).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: What pydantic accepts for a datetime, as YAML users write it: a date, optionally a time
#: (seconds and fraction optional) and an offset.
DATETIME_PATTERN = (r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                    r"([Zz]|[+-]\d{2}(:?\d{2})?)?)?$")
_REF = "#/$defs/"
#: Keys that describe a schema rather than constrain it (kept on the outside when wrapping).
_ANNOTATIONS = ("title", "description", "default", "examples")


def json_schema(model: type[BaseModel], *, title: str, kind: str,
                shorthands: Mapping[tuple[str, ...], Mapping[str, Any]] | None = None
                ) -> dict[str, Any]:
    """The JSON Schema of files of `model` (see the module docstring). `shorthands` maps a
    property path from the root (e.g. `("design",)`) to another form the field accepts."""
    schema = model.model_json_schema(mode="validation")
    _relax_datetimes(schema)
    for path, alt in (shorthands or {}).items():
        _add_alternative(schema, path, dict(alt))
    defs = schema.pop("$defs", {})
    head = {"$schema": JSON_SCHEMA_DIALECT, "$id": f"badia-{kind}.schema.json",
            "title": title,
            "description": schema.get("description") or title}
    if "extends" not in schema.get("properties", {}):
        return {**head, **{k: v for k, v in schema.items() if k not in ("title", "description")},
                **({"$defs": defs} if defs else {})}
    name = model.__name__
    full, partial = f"{name}File", f"{name}FileExtending"
    defs[full] = schema
    defs[partial] = _Partial(defs).make(copy.deepcopy(schema))
    defs[partial]["description"] = (f"{schema.get('description') or name} (a file with "
                                    f"`extends:` holds only what differs from its base)")
    return {**head, "if": {"required": ["extends"]}, "then": {"$ref": _REF + partial},
            "else": {"$ref": _REF + full}, "$defs": defs}


def schema_text(model: type[BaseModel], *, title: str, kind: str,
                shorthands: Mapping[tuple[str, ...], Mapping[str, Any]] | None = None) -> str:
    """`json_schema` as indented JSON text ending in a newline (what `badia schema` prints)."""
    return json.dumps(json_schema(model, title=title, kind=kind, shorthands=shorthands),
                      indent=2, ensure_ascii=False) + "\n"


def _walk(node: Any, visit: Any) -> None:
    if isinstance(node, dict):
        visit(node)
        for v in node.values():
            _walk(v, visit)
    elif isinstance(node, list):
        for v in node:
            _walk(v, visit)


def _relax_datetimes(schema: dict[str, Any]) -> None:
    def visit(node: dict[str, Any]) -> None:
        if node.get("format") == "date-time":
            del node["format"]
            node["pattern"] = DATETIME_PATTERN

    _walk(schema, visit)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and node["$ref"].startswith(_REF):
        node = schema["$defs"][node["$ref"][len(_REF):]]
    return node


def _add_alternative(schema: dict[str, Any], path: tuple[str, ...], alt: dict[str, Any]) -> None:
    """Let the property at `path` also take the form `alt` (a shorthand)."""
    *parents, leaf = path
    node = schema
    for key in parents:
        node = _resolve(schema, node)["properties"][key]
    props = _resolve(schema, node)["properties"]
    old = props[leaf]
    outer = {k: old[k] for k in _ANNOTATIONS if k in old}
    inner = {k: v for k, v in old.items() if k not in _ANNOTATIONS}
    props[leaf] = {**outer, "anyOf": [alt, inner]}


class _Partial:
    """Copies of schemas in which nothing is required where a file that `extends:` another
    merges with it: the properties of mappings (and the values of dicts), recursively, but not
    the items of lists (a list replaces the base's, whole)."""

    def __init__(self, defs: dict[str, Any]):
        self.defs = defs
        self.names: dict[str, str] = {}

    def ref(self, name: str) -> str:
        if name not in self.names:
            self.names[name] = f"{name}Partial"
            self.defs[self.names[name]] = {}        # a placeholder, for recursive models
            self.defs[self.names[name]] = self.make(copy.deepcopy(self.defs[name]))
        return self.names[name]

    def make(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node.pop("required", None)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            node["$ref"] = _REF + self.ref(ref[len(_REF):])
        if isinstance(node.get("properties"), dict):
            node["properties"] = {k: self.make(v) for k, v in node["properties"].items()}
        if isinstance(node.get("additionalProperties"), dict):
            node["additionalProperties"] = self.make(node["additionalProperties"])
        for key in ("anyOf", "allOf"):
            if key in node:
                node[key] = [self.make(v) for v in node[key]]
        if "oneOf" in node:
            # without their required keys, branches may overlap: any one of them will do
            node["anyOf"] = [self.make(v) for v in node.pop("oneOf")]
            node.pop("discriminator", None)
        return node


__all__ = ["DATETIME_PATTERN", "JSON_SCHEMA_DIALECT", "json_schema", "schema_text"]
