"""Nearly orthogonal Latin hypercubes (NOLH): the published Cioppa-Lucas designs, stacked, scaled.

The designs are those of T. M. Cioppa and T. W. Lucas, "Efficient nearly orthogonal and
space-filling Latin hypercubes", Technometrics 49(1), 2007, 45-55, the designs the NPS SEED
Center's data-farming analysts use most:

| runs m | factors (columns) | max abs pairwise correlation | condition number of X'X |
| --- | --- | --- | --- |
| 17 | up to 7 | 0 (orthogonal) | 1.000 |
| 33 | up to 11 | 0.0234 | 1.123 |
| 65 | up to 16 | 0.0219 | 1.103 |
| 129 | up to 22 | 0.0074 | 1.039 |

(measured on the tables here, not copied from the paper; "nearly orthogonal" is Cioppa and
Lucas's largest |correlation| of at most 0.03). The numbers are data in
`sim.experiments.nolh_tables`, which says where they were taken from; nothing here searches
for or generates a design.

**Levels and the fold-over.** A design of m = 2k + 1 runs has integer levels 1..m, each once
in every column (a Latin hypercube). Only its first k rows are stored; the full design is, as
published, those k rows x_1..x_k, the centre row ((m + 1) / 2 in every column), then the k rows
(m + 1) - x_1, ..., (m + 1) - x_k: in centred levels x - (m + 1) / 2 the design is [T; 0; -T].
Because of this fold-over every column is orthogonal to every squared column and to every
two-factor interaction column (the sums of a b^2 and of a b c over rows x and -x cancel).

**Which columns.** With n factors the smallest table with at least n columns is used, and
factor j gets column `conf[j]` (default: the first n columns, j = 0..n-1, as
`stack_nolhs.rb` assigns them).

**Stacking.** To get more runs from the same table, SEED Center analysts stack rotated
copies (Paul J. Sanchez's `stack_nolhs.rb`, whose rule this follows): copy s = 0..stack-1 gives
factor j the table column (conf[j] + s) mod K (each row rotated left by s places, K the table's
number of columns), so each copy is the same Latin hypercube with the factors assigned to
other columns. Every copy has the same centre row, so copies after the first leave it out, as
`stack_nolhs.rb` does: `stack` copies of an m-run table give `stack * (m - 1) + 1` runs, not
`stack * m`. At most K copies are distinct, so `stack` is at most K. In every stacked column
each level but the centre appears `stack` times and the centre once. All copies have the same
column means and sums of squares, so the correlation of two stacked columns is the mean of the
copies' correlations, each between two different table columns: never larger in size than the
table's largest.

**Scaling.** Level x of m maps to a factor range [lo, hi] as lo + (hi - lo) (x - 1) / (m - 1)
(`scale`): level 1 is lo, level m is hi, the centre is the midpoint, as `stack_nolhs.rb`
scales them. `to_unit` gives the same fraction (x - 1) / (m - 1) in [0, 1], or with
`strata=True` the centre (x - 1/2) / m of the level's stratum in (0, 1), the value for binning
into k discrete values: bin floor(u k) then gets m / k runs rounded down or up, and the
fold-over symmetry is kept (levels x and m + 1 - x land in mirrored bins, the centre aside).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from sim.experiments.nolh_tables import HALF_DESIGNS

#: Runs of the published designs, smallest first.
TABLE_RUNS: tuple[int, ...] = tuple(sorted(HALF_DESIGNS))


@cache
def _table(runs: int) -> np.ndarray:
    half = np.array([[int(v) for v in row.split()] for row in HALF_DESIGNS[runs]],
                    dtype=np.int64)
    k, _ = half.shape
    if 2 * k + 1 != runs:
        raise AssertionError(f"the {runs}-run table has {k} rows in its first half")
    centre = np.full((1, half.shape[1]), (runs + 1) // 2, dtype=np.int64)
    full = np.vstack([half, centre, (runs + 1) - half])
    full.setflags(write=False)
    return full


def table(runs: int) -> np.ndarray:
    """The full published `runs`-run design: integer levels 1..runs, one column per factor
    (read-only). `runs` is one of `TABLE_RUNS` (17, 33, 65, 129)."""
    if runs not in HALF_DESIGNS:
        raise ValueError(f"no published NOLH of {runs} runs (there are "
                         f"{', '.join(map(str, TABLE_RUNS))})")
    return _table(runs)


def columns(runs: int) -> int:
    """How many factors (columns) the `runs`-run design takes."""
    return int(table(runs).shape[1])


#: The most factors any published design here takes (22, in 129 runs).
MAX_FACTORS: int = max(columns(r) for r in TABLE_RUNS)


def table_runs(n_factors: int) -> int:
    """Runs of the smallest published design with at least `n_factors` columns (ValueError
    if none has: more than `MAX_FACTORS`, or fewer than one factor)."""
    if n_factors < 1:
        raise ValueError(f"a NOLH needs at least one factor, got {n_factors}")
    for runs in TABLE_RUNS:
        if columns(runs) >= n_factors:
            return runs
    raise ValueError(f"{n_factors} factors, more than the {MAX_FACTORS} of the largest "
                     f"published NOLH ({TABLE_RUNS[-1]} runs)")


def stacked_runs(runs: int, stack: int) -> int:
    """Rows of `stack` stacked copies of the `runs`-run design (one shared centre row)."""
    return stack * (runs - 1) + 1


def nolh(n_factors: int, stack: int = 1, conf: Sequence[int] | None = None,
         runs: int | None = None) -> np.ndarray:
    """The NOLH for `n_factors` factors as integer levels 1..m, shape (rows, n_factors).

    m is `table_runs(n_factors)`: 17 runs for up to 7 factors, 33 for up to 11, 65 for up to
    16, 129 for up to 22 (Cioppa and Lucas 2007; see the module docstring for the tables, the
    fold-over and the source), or `runs` to use a larger table. `conf` lists the table column
    (0-based) of each factor, all different (default: columns 0..n_factors-1). `stack` >= 1
    stacks that many rotated copies (copy s uses column (conf[j] + s) mod K) without repeating
    the centre row: `stack * (m - 1) + 1` rows, `stack` at most K, the table's number of
    columns. Map the levels to factor values with `scale` or `to_unit`. Raises ValueError for
    a bad argument."""
    smallest = table_runs(n_factors)
    if runs is None:
        runs = smallest
    elif runs not in TABLE_RUNS or runs < smallest:
        fits = ", ".join(str(r) for r in TABLE_RUNS if r >= smallest)
        raise ValueError(f"runs must be one of {fits} for {n_factors} factor(s), got {runs}")
    full = table(runs)
    k_cols = full.shape[1]
    cols = list(range(n_factors)) if conf is None else [int(c) for c in conf]
    if len(cols) != n_factors:
        raise ValueError(f"conf lists {len(cols)} column(s) for {n_factors} factor(s)")
    if len(set(cols)) != len(cols):
        raise ValueError("conf lists a column twice")
    bad = [c for c in cols if not 0 <= c < k_cols]
    if bad:
        raise ValueError(f"conf: column {bad[0]} is not one of the {runs}-run table's "
                         f"columns 0..{k_cols - 1}")
    if not 1 <= stack <= k_cols:
        raise ValueError(f"stack must be 1..{k_cols} (the {runs}-run table has {k_cols} "
                         f"columns, so {k_cols} distinct rotations), got {stack}")
    centre = (runs - 1) // 2
    keep = np.ones(runs, dtype=bool)
    copies = []
    for s in range(stack):
        copy = full[:, [(c + s) % k_cols for c in cols]]
        if s:
            keep[centre] = False
        copies.append(copy[keep])
    return np.vstack(copies)


def to_unit(levels: np.ndarray, runs: int, strata: bool = False) -> np.ndarray:
    """Levels 1..runs as fractions: (x - 1) / (runs - 1) in [0, 1] (level 1 is 0, level `runs`
    is 1), or with `strata` the stratum centre (x - 1/2) / runs in (0, 1)."""
    x = np.asarray(levels, dtype=float)
    return (x - 0.5) / runs if strata else (x - 1.0) / (runs - 1)


def scale(levels: np.ndarray, runs: int, lo: float, hi: float) -> np.ndarray:
    """Levels 1..runs mapped linearly onto [lo, hi]: lo + (hi - lo) (x - 1) / (runs - 1),
    computed as a weighted mean so that level 1 is exactly lo and level `runs` exactly hi."""
    x = np.asarray(levels, dtype=float)
    return (lo * (runs - x) + hi * (x - 1.0)) / (runs - 1)


def max_abs_correlation(design: np.ndarray) -> float:
    """The largest |Pearson correlation| between two different columns (0 for one column)."""
    d = np.asarray(design, dtype=float)
    if d.shape[1] < 2:
        return 0.0
    r = np.corrcoef(d, rowvar=False)
    np.fill_diagonal(r, 0.0)
    return float(np.abs(r).max())
