"""Where units start: insurgent cells placed in an area start out of sight of hostile posts.

A cell placed "in the Abu Rujmayn caves" lies up in a cave its commanders chose; they would not
choose one inside the day sensor range of a strongpoint or border post (a cell seen at dawn on
day 1 is a cell lost on day 1). So among the candidate cells of the area, those within

    d < R_post + STANDOFF_MARGIN_KM

of any hostile static post (``R_post``: the post's day sensor range) are left out, unless that
leaves none, in which case all candidates stay (the scenario asked for that area).
"""

from __future__ import annotations

import numpy as np

#: Margin beyond a post's day sensor range, km: a cave at the very edge of a post's sight is
#: still watched by its patrols on foot.
STANDOFF_MARGIN_KM = 2.0


def out_of_sight(candidates: np.ndarray, post_cells: np.ndarray, post_range_km: np.ndarray,
                 cols: int, cell_km: float) -> np.ndarray:
    """The ``candidates`` (flat cells) farther than each post's range plus the margin from
    every post in ``post_cells``; all of them if none is."""
    if len(post_cells) == 0 or len(candidates) == 0:
        return candidates
    cr, cc = np.divmod(candidates, cols)
    pr, pc = np.divmod(np.asarray(post_cells, dtype=np.int64), cols)
    d_km = np.hypot(cr[:, None] - pr[None, :], cc[:, None] - pc[None, :]) * cell_km
    seen = (d_km < np.asarray(post_range_km)[None, :] + STANDOFF_MARGIN_KM).any(axis=1)
    kept = candidates[~seen]
    return kept if len(kept) else candidates
