"""Compiled kernels: one call per phase of the hour instead of a few dozen numpy calls.

A theatre holds a few hundred units, so each numpy call on its columns costs its fixed overhead
(about a microsecond) far more than its arithmetic; a phase of the hour written as a dozen such
calls is dominated by them. Where a measured hot phase is that, its loop is also written as a
plain Python function over the same arrays and compiled with Numba (``njit``), which runs the
whole phase in one call. The same holds for the router's searches of a few thousand cells,
where scipy's fixed cost per call is many times the search itself (`sim.world.gridsearch`).
The numpy (or scipy) version stays the reference: the kernels must give the same results to
the bit (tests run both on random inputs and the bundled scenarios both ways).

Use::

    @kernel
    def _supply_hour(water, ...):      # plain Python over numpy arrays, Numba's subset
        ...

    if _supply_hour.compiled:          # else the numpy path
        _supply_hour(water, ...)

Numba is imported, and a kernel compiled (or loaded from Numba's on-disk cache, next to this
package's bytecode), on the first call of any kernel, so commands that never step a model
(``badia --help``, ``badia validate``) never pay for it.

``BADIA_KERNELS=numpy`` in the environment turns the kernels off (the numpy path everywhere);
they are off too where Numba cannot be imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

#: The environment variable that chooses the kernels: ``numba`` (the default) or ``numpy``.
ENV_KERNELS = "BADIA_KERNELS"
_CHOICES = ("numba", "numpy")

_numba_ok: bool | None = None  # Numba importable (None: not tried yet)


def wanted() -> bool:
    """Whether the environment asks for compiled kernels (``$BADIA_KERNELS``, default on)."""
    choice = os.environ.get(ENV_KERNELS, "numba").strip().lower() or "numba"
    if choice not in _CHOICES:
        from sim.errors import UserError

        raise UserError(f"${ENV_KERNELS}={choice!r}: use one of {', '.join(_CHOICES)} "
                        "(numpy turns the compiled kernels off)")
    return choice == "numba"


def available() -> bool:
    """Whether compiled kernels run here: asked for, and Numba imports."""
    global _numba_ok
    if not wanted():
        return False
    if _numba_ok is None:
        try:
            import numba  # noqa: F401  (heavy: only when a kernel is first asked for)
        except Exception:  # an unsupported platform or a broken install: the numpy path
            _numba_ok = False
        else:
            _numba_ok = True
    return _numba_ok


class Kernel:
    """A plain Python function compiled with ``numba.njit(cache=True)`` on its first call.

    ``compiled`` tells the caller whether to call it (True) or take its numpy path; it is read
    at each call, so a test may switch ``$BADIA_KERNELS`` between runs in one process.
    """

    def __init__(self, fn: Callable[..., Any]):
        self.py = fn  # the uncompiled function (it runs as plain Python too, slowly)
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._jitted: Callable[..., Any] | None = None

    @property
    def compiled(self) -> bool:
        return available()

    def __call__(self, *args: Any) -> Any:
        fn = self._jitted
        if fn is None:
            import numba

            # cache=True: compiled once per machine (Numba's cache, keyed by the source file),
            # then loaded; nogil: a Dask worker's threads may step models side by side
            fn = self._jitted = numba.njit(cache=True, nogil=True)(self.py)
        return fn(*args)


def kernel(fn: Callable[..., Any]) -> Kernel:
    """Mark ``fn`` as a compiled kernel (see the module's docstring)."""
    return Kernel(fn)
