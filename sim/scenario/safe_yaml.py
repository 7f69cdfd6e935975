"""The one YAML loader for everything a user hands badia: scenario, experiment and calibration
files and `--set` values.

It is a safe loader (`SafeConstructor`: no Python objects; libyaml's parser when PyYAML has it,
else the pure-Python one) with the limits a hostile or careless file needs, so
that every bad file fails fast with one line, `<file>: <field.path>: line N: <message>`, raised as
`ScenarioError` (callers re-raise it as their own error class):

- a file larger than `MAX_FILE_BYTES` is refused before it is read (its size is checked, then at
  most that many bytes are read, so a FIFO or `/dev/zero` cannot hang it either);
- nesting deeper than `MAX_DEPTH` levels is refused while composing (no RecursionError);
- aliases (`*name`): at most `MAX_ALIASES`, and every alias counts as the whole node it stands
  for, so a document whose values, expanded, would exceed `MAX_NODES` is refused while it is
  being composed. An alias bomb ("billion laughs") fails in milliseconds with bounded memory, and
  nothing later (pydantic, `copy.deepcopy`, JSON) can blow a small file up to gigabytes. An alias
  to a node that contains it (a recursive structure) is refused;
- a key given twice in one mapping is refused (YAML would silently keep the last), naming the key
  and both lines; merge keys (`<<: *base`) may still be overridden, as YAML intends;
- a timestamp that is not a calendar date (`2018-02-30`, month 13) stays a string, so the field
  that expects a date reports it ("day is out of range for month") instead of a traceback;
- an integer literal longer than `MAX_INT_CHARS` characters is refused (Python's int() limit and
  YAML 1.1's base-60 integers would otherwise raise or take quadratic time);
- RecursionError and MemoryError never escape: they become one line too.

Pure: no state between calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode

from sim.errors import ScenarioError
from sim.scenario.paths import render_path

#: Largest file read (bytes). The biggest bundled scenario is about 30 kB; an ASCII map of the
#: largest allowed size is well under this.
MAX_FILE_BYTES = 5 * 1024 * 1024
#: Deepest nesting of mappings and lists. A scenario is about 6 levels deep.
MAX_DEPTH = 64
#: Most aliases (`*name`) in one document: shared tactic blocks need a handful.
MAX_ALIASES = 256
#: Most values (scalars, lists and mappings) in one document with every alias expanded. The
#: 12-month campaign scenario has about 5,000.
MAX_NODES = 250_000
#: Longest integer literal (characters): 64-bit numbers need 20.
MAX_INT_CHARS = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.MarkedYAMLError):
    """A limit of this loader was hit (internal: always becomes a ScenarioError line)."""

    def __init__(self, problem: str, mark: Any, path: str = "") -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.path = path


class _LimitedComposer(Composer):
    """The composer with the limits above: depth, aliases, expanded size, duplicate keys."""

    def _init_limits(self) -> None:
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}      # id(anchored node) -> its size, aliases expanded
        self._path: list[str | int] = []       # where the composer is, for messages

    def _where(self) -> str:
        if len(self._path) > 8:
            return render_path(self._path[:8]) + "..."
        return render_path(self._path)

    def _count(self, n: int, mark: Any) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES:,} values with aliases expanded (an alias "
                           "bomb?); write the values out or use fewer aliases", mark,
                           self._where())

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        seg = _segment(parent, index)
        if seg is not None:
            self._path.append(seg)
        try:
            return self._compose(parent, index)
        finally:
            if seg is not None:
                self._path.pop()

    def _compose(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:
                self._aliases += 1
                if self._aliases > MAX_ALIASES:
                    raise _Refused(f"more than {MAX_ALIASES} aliases (*name) in one file",
                                   event.start_mark, self._where())
                size = self._sizes.get(id(node))
                if size is None:
                    raise _Refused(f"alias *{event.anchor} refers to a value that contains it "
                                   "(a recursive structure)", event.start_mark, self._where())
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark,
                           self._where())
        before = self._nodes
        self._count(1, event.start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if event.anchor is not None:
            self._sizes[id(node)] = self._nodes - before
        return node

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], Any] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                continue
            first = seen.setdefault((key.tag, key.value), key.start_mark)
            if first is not key.start_mark:
                raise _Refused(f"duplicate key {key.value!r} (first at line {first.line + 1}); "
                               "YAML would keep only the last", key.start_mark, self._where())
        return node


class _LimitedConstructor(SafeConstructor):
    """`SafeConstructor` whose scalars cannot raise anything but a YAML error."""

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        """A date/time, or the text as written when it is no calendar date (2018-02-30): the
        field that wants a date then says what is wrong with it."""
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        text = str(node.value)
        if len(text) > MAX_INT_CHARS:
            raise _Refused(f"integer with {len(text):,} characters (at most {MAX_INT_CHARS})",
                           node.start_mark)
        try:
            return super().construct_yaml_int(node)
        except ValueError as exc:
            raise _Refused(f"not an integer: {exc}", node.start_mark) from None


_LimitedConstructor.add_constructor("tag:yaml.org,2002:timestamp",
                                    _LimitedConstructor.construct_yaml_timestamp)
_LimitedConstructor.add_constructor("tag:yaml.org,2002:int", _LimitedConstructor.construct_yaml_int)


class PyBadiaLoader(_LimitedComposer, _LimitedConstructor, yaml.SafeLoader):
    """`yaml.SafeLoader` (PyYAML's pure-Python parser) with the limits of this module."""

    def __init__(self, stream: Any) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._init_limits()


if hasattr(yaml, "CSafeLoader"):
    class CBadiaLoader(_LimitedComposer, _LimitedConstructor, yaml.CSafeLoader):
        """`yaml.CSafeLoader` with the limits of this module: libyaml parses (events in C,
        about five times faster), while composing, and so every limit, stays in Python."""

        def __init__(self, stream: Any) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            Composer.__init__(self)      # CSafeLoader composes in C; this one in Python
            self._init_limits()

    #: The loader every user file goes through: libyaml's parser when PyYAML has it.
    BadiaLoader: type = CBadiaLoader
else:  # pragma: no cover - PyYAML built without libyaml
    BadiaLoader = PyBadiaLoader


def _segment(parent: Node | None, index: Any) -> str | int | None:
    """The path segment of a node composed under `parent` (None for keys and the root)."""
    if isinstance(parent, MappingNode):
        if isinstance(index, ScalarNode):
            return str(index.value)
        return None if index is None else "?"
    if parent is not None and isinstance(index, int):
        return index
    return None


# ------------------------------------------------------------------ reading


def _message(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if isinstance(exc, _Refused):
        where = f"{exc.path}: " if exc.path else ""
        return f"{source}: {where}{at}{exc.problem}"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{source}: {at}YAML syntax error: {problem}"


def parse_yaml(text: str, source: str) -> Any:
    """The data of one YAML document, loaded with :class:`BadiaLoader`.

    Raises `ScenarioError` with one line naming `source` for a syntax error or a hit limit."""
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError(f"{source}: {len(text):,} characters, more than the "
                            f"{MAX_FILE_BYTES // 2**20} MB a YAML document may have")
    loader = BadiaLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ScenarioError(_message(source, exc)) from None
    except RecursionError:
        raise ScenarioError(f"{source}: nested too deeply to read") from None
    except MemoryError:
        raise ScenarioError(f"{source}: too large to read (out of memory)") from None
    finally:
        loader.dispose()


def _read_at_most(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a file, read in chunks (a FIFO or a device reports size 0)."""
    chunks: list[bytes] = []
    got = 0
    with path.open("rb") as fh:
        while got < limit:
            chunk = fh.read(min(1 << 16, limit - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    return b"".join(chunks)


def read_yaml_file(path: str | Path, source: str | None = None, what: str = "file") -> Any:
    """Read and parse a YAML file with the limits of this module; `source` names it in
    messages (default: the path as given). Raises `ScenarioError` with one line."""
    p = Path(path)
    source = str(path) if source is None else source
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise IsADirectoryError(str(p))
        if size > MAX_FILE_BYTES:
            raise ScenarioError(f"{source}: the {what} is {size / 2**20:.1f} MB, more than the "
                                f"{MAX_FILE_BYTES // 2**20} MB limit")
        raw = _read_at_most(p, MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise ScenarioError(f"{source}: is a directory, not a {what}") from None
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read file ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"{source}: the {what} is more than the "
                            f"{MAX_FILE_BYTES // 2**20} MB limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: cannot read file (not UTF-8 text: {exc.reason} at "
                            f"byte {exc.start})") from None
    return parse_yaml(text, source)


def read_mapping_file(path: str | Path, what: str, keys: str,
                      error: type[ScenarioError] = ScenarioError) -> dict:
    """A user's YAML file whose top level must be a mapping (an experiment or calibration
    file), read with :func:`read_yaml_file`; an empty file is an empty mapping. Problems raise
    ``error`` (a ScenarioError class), one line each; ``keys`` names the expected keys for the
    message."""
    source = str(path)
    try:
        data = read_yaml_file(Path(path), source, what=what)
    except ScenarioError as exc:
        raise error(exc.messages) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{source}: the top level must be a mapping of keys ({keys}, ...), got "
                    f"{type(data).__name__}")
    return data
