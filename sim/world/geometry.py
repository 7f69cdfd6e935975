"""Rasterisation geometry: which cells a segment, a line, a polygon or a polyline covers.

Cells are addressed in continuous grid coordinates: `u` runs along the columns and `v` down the
rows, cell `(r, c)` covering `[c, c+1) x [r, r+1)`, so a cell's centre is `(c + 0.5, r + 0.5)`.
Distances and polygons work in the grid's planar km frame (`Grid.xy_km`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.world.geo import Grid


def k_smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest of ``values`` (1-d), smallest first, ties in index order
    (NaN last): one answer on every machine.

    ``np.argpartition`` and numpy's default (quicksort) argsort break ties as their algorithm
    falls: numpy 2 sorts with the CPU's AVX2 or AVX-512 instructions where it finds them, so a
    rule ranked by either (the nearest hides of a cell on an integer grid tie often) would give
    another run on another machine. The ``k``-th smallest value, which
    ``np.partition`` finds whatever its algorithm, bounds the candidates; a stable sort of
    those few ranks them."""
    n = len(values)
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k >= n:
        return np.argsort(values, kind="stable")
    kth = np.partition(values, k - 1)[k - 1]
    if kth != kth:  # NaN: fewer than k numbers
        return np.argsort(values, kind="stable")[:k]
    within = np.flatnonzero(values <= kth)
    return within[np.argsort(values[within], kind="stable")[:k]]


def grid_uv(grid: Grid, lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
    """Continuous (u=col, v=row) coordinates: cell (r, c) covers [c, c+1) x [r, r+1)."""
    x, y = grid.xy_km(lat, lon)
    u = (np.asarray(x) + grid.width_km / 2.0) / grid.cell_km
    v = (grid.height_km / 2.0 - np.asarray(y)) / grid.cell_km
    return u, v


def supercover(u0: float, v0: float, u1: float, v1: float, shape: tuple[int, int]) -> np.ndarray:
    """Every cell a straight segment passes through (a 4-connected chain), clipped to the grid.

    Amanatides-Woo traversal; returns an (n, 2) int array of (row, col) in travel order.
    """
    col, row = math.floor(u0), math.floor(v0)
    end_col, end_row = math.floor(u1), math.floor(v1)
    du, dv = u1 - u0, v1 - v0
    step_c = 1 if du > 0 else -1
    step_r = 1 if dv > 0 else -1
    t_max_c = ((col + (step_c > 0)) - u0) / du if du != 0 else math.inf
    t_max_r = ((row + (step_r > 0)) - v0) / dv if dv != 0 else math.inf
    t_delta_c = abs(1.0 / du) if du != 0 else math.inf
    t_delta_r = abs(1.0 / dv) if dv != 0 else math.inf
    cells = [(row, col)]
    n_max = abs(end_col - col) + abs(end_row - row)
    for _ in range(n_max):
        if t_max_c < t_max_r:
            col += step_c
            t_max_c += t_delta_c
        else:
            row += step_r
            t_max_r += t_delta_r
        cells.append((row, col))
    out = np.array(cells, dtype=np.int64).reshape(-1, 2)
    keep = (out[:, 0] >= 0) & (out[:, 0] < shape[0]) & (out[:, 1] >= 0) & (out[:, 1] < shape[1])
    return out[keep]


def line_cells(a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
    """An 8-connected chain of cells from `a` to `b` inclusive (DDA), (n, 2) int64."""
    (r0, c0), (r1, c1) = a, b
    n = max(abs(r1 - r0), abs(c1 - c0))
    if n == 0:
        return np.array([[r0, c0]], dtype=np.int64)
    t = np.arange(n + 1) / n
    rows = np.rint(r0 + t * (r1 - r0)).astype(np.int64)
    cols = np.rint(c0 + t * (c1 - c0)).astype(np.int64)
    return np.stack([rows, cols], axis=1)


def points_in_polygon(
    px: np.ndarray, py: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    """Even-odd rule: True where (px, py) lies inside the polygon with vertices (xs, ys)."""
    inside = np.zeros(np.shape(px), bool)
    n = len(xs)
    for i in range(n):
        x1, y1, x2, y2 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        if y1 == y2:
            continue        # a horizontal edge never crosses the ray
        crosses = (y1 > py) != (y2 > py)
        x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (px < x_at)
    return inside


def segment_distance(
    px: np.ndarray, py: np.ndarray, ax: float, ay: float, bx: float, by: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points to segment a-b, and the signed cross product (left > 0)."""
    dx, dy = bx - ax, by - ay
    seg2 = dx * dx + dy * dy
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / seg2, 0.0, 1.0) if seg2 > 0 else 0.0
    qx, qy = ax + t * dx, ay + t * dy
    cross = dx * (py - ay) - dy * (px - ax)
    return np.hypot(px - qx, py - qy), cross


def polyline_distance(
    px: np.ndarray, py: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to a polyline and the side (+1 left / -1 right of the nearest segment's line).

    The end segments' lines extend beyond the ends, so every point gets a side.
    """
    best = np.full(px.shape, np.inf)
    side = np.ones(px.shape, dtype=np.int8)
    for i in range(len(xs) - 1):
        d, cross = segment_distance(px, py, xs[i], ys[i], xs[i + 1], ys[i + 1])
        closer = d < best
        best = np.where(closer, d, best)
        side = np.where(closer, np.where(cross >= 0, 1, -1), side).astype(np.int8)
    return best, side

