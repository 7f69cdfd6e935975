"""Every user-facing error of badia, and the did-you-mean helper.

As in scikit-learn, the exceptions a user can meet live in one module. Each carries one line per
problem, ``<file>: <field.path>: <message>``, which the command line prints as it is (exit status
1) instead of a traceback. Raise them for bad *input*; a bug stays an ordinary exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any


class ScenarioError(Exception):
    """Bad scenario input. `.messages` holds one line per problem: `<file>: <path>: <message>`."""

    def __init__(self, messages: str | Sequence[str]):
        if isinstance(messages, str):
            messages = [messages]
        # one line each, whatever odd keys or values a file holds; keep order, drop repeats
        # (pydantic can report one cause twice)
        lines = [str(m).replace("\r", "\\r").replace("\n", "\\n") for m in messages]
        self.messages: list[str] = list(dict.fromkeys(lines))
        super().__init__("\n".join(self.messages))

    def __str__(self) -> str:
        return "\n".join(self.messages)


class PathError(ValueError):
    """A path (override / event / selector) that does not resolve. `.at` is where it failed."""

    def __init__(self, message: str, at: tuple = ()):
        super().__init__(message)
        self.at = at


class TerrainError(ScenarioError):
    """A map that validates but cannot be compiled (one line: `<file>: <field>: <message>`)."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.messages = [message]

    def __str__(self) -> str:
        return self.messages[0]


class ExperimentError(ScenarioError):
    """Bad experiment input: `.messages` holds one line per problem, `<file>: <path>: <msg>`."""


class CalibrationError(ScenarioError):
    """Bad calibration input (the calibration file, its observed data, or a results folder that
    cannot be resumed): `.messages` holds one line per problem, `<file>: <path>: <msg>`."""


class ResultsError(Exception):
    """A results folder that cannot be read as asked; the message is one line naming the file."""


class BatchError(Exception):
    """A batch that cannot start (e.g. a results folder of another experiment): one line."""


class AssetError(Exception):
    """A one-line, user-facing failure to discover or fetch the browser app's assets."""


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 1."""


class OutsideGridError(ValueError):
    """A point or cell lies outside the grid."""


class NoRouteError(ValueError):
    """No route joins the two places (or a name is not on the road network)."""


def did_you_mean(word: Any, candidates: Iterable[Any]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or ''."""
    cands = sorted(str(c) for c in candidates)   # sorted: ties resolve the same every run
    match = difflib.get_close_matches(str(word), cands, n=1, cutoff=0.6)
    if not match:
        # case slips ('palmyra') are common and difflib's ratio can miss them on short names
        match = [c for c in cands if c.lower() == str(word).lower()][:1]
    return f" (did you mean '{match[0]}'?)" if match else ""


class ReplayError(UserError):
    """A run folder that `badia viz --replay` cannot open: one line naming the path and what is
    missing or wrong."""
