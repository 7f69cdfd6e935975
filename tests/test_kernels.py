"""The switch between compiled kernels and their numpy reference (sim.compiled)."""

import numpy as np
import pytest

from sim import compiled
from sim.errors import UserError


def test_kernels_are_on_by_default_and_numpy_turns_them_off(monkeypatch):
    monkeypatch.delenv(compiled.ENV_KERNELS, raising=False)
    assert compiled.available()  # numba is a dependency: a broken install shows here
    monkeypatch.setenv(compiled.ENV_KERNELS, "numpy")
    assert not compiled.available()


def test_an_unknown_kernel_choice_is_a_one_line_user_error(monkeypatch):
    monkeypatch.setenv(compiled.ENV_KERNELS, "fortran")
    with pytest.raises(UserError, match=r"BADIA_KERNELS='fortran': use one of numba, numpy"):
        compiled.available()


def test_a_kernel_compiles_on_first_call_and_gives_the_python_functions_result():
    def add_into(out, a, b):
        for i in range(len(out)):
            out[i] = a[i] + b[i]

    k = compiled.kernel(add_into)
    a, b = np.arange(5.0), np.full(5, 0.1)
    out, ref = np.empty(5), np.empty(5)
    k(out, a, b)
    k.py(ref, a, b)
    assert out.tobytes() == ref.tobytes()
    assert k._jitted is not None
