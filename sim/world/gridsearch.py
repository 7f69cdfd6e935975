"""Dijkstra over a box of the grid, compiled (`sim.compiled`): the router's searches run
straight on the hours-per-km layer, without building a graph or paying scipy's fixed cost per
call (about a hundred microseconds: more than most route searches, over a few hundred cells,
take compiled; a cell settled costs about a tenth of a microsecond either way).

`settle` is a search of the grid graph `sim.world.routes.window_graph` builds for the box (the
same edges with the same float64 weights: `(h[y] + h[x]) * half_steps[k]`, then `d[x] + w`),
run with a 4-ary heap. Dijkstra's distances do not depend on the order the heap breaks ties in
(each is the least sum over the cells scanned before it), so they are scipy's to the bit; a next
hop is the first scanned neighbour attaining its cell's distance, the attaining one nearest the
target, which is scipy's too unless two such neighbours share that distance (a tie:
`sim.world.routes.tied_on_route`). `route`
reads a route with that check, so a caller takes what it returns as the reference search's
route and runs scipy's search where it reports a tie.

Kernels receive the box as `top, left, rows, cols` (local cells numbered row by row) and the
8 neighbours as `d_row, d_col` in `sim.world.routes._OFFSETS` order.
"""

from __future__ import annotations

import numpy as np

from sim.compiled import kernel

#: Children per node of `settle`'s heap: 4 halves the levels a pop sifts through, each
#: comparing 4 neighbouring keys (a third faster than a binary heap on a theatre's searches).
_ARITY = 4

#: `slot` of a cell `settle` has not offered a distance yet, and of one it has settled (any
#: other cell is queued, its slot its place in the heap).
UNSEEN, SETTLED = -1, -2


@kernel
def settle(h, top, left, rows, cols, d_row, d_col, half_steps, allowed, source, limit, dist,
           hop, slot, heap, queued):
    """Run (or resume) Dijkstra over the box of the layer `h` on its cells `allowed` (bool
    per local cell, or an empty array for all: the others are impassable, as in
    `sim.world.routes.corridor_graph`), from the target the state arrays start with:

    - `dist`: float64 hours (inf where no distance was offered);
    - `hop`: int32 next local cell (-1 unset; the target maps to itself);
    - `slot`: int32 `UNSEEN`, `SETTLED` or the cell's place in `heap`;
    - `heap`: int32 cells (the box's size), a heap on `dist` of `queued[0]` cells (a cell's
      children at `_ARITY * i + 1 ...`).

    A fresh search is all inf, -1, `UNSEEN` but the target (0, itself, slot 0, first in the
    heap), and `queued[0] = 1`.

    A cell is offered a distance only if it is at most `limit` (so every cell whose distance
    is within the limit ends with it, the others stay unreached, as with `scipy...dijkstra(limit
    =...)`). With `source < 0` the search runs until no cell is left within the limit. Else it
    stops once every cell not farther than `source` is settled (so it resumes where the last
    call with a source stopped): those cells (the source's route among them) hold their final
    distance and hop; any other holds inf or a tentative distance at least its final one,
    which is more than the source's. Returns whether the source is settled (else it cannot
    reach the target: the search ran out of cells within the limit).
    """
    reach = dist[source] if source >= 0 and slot[source] == SETTLED else np.inf
    every = len(allowed) == 0
    size = queued[0]
    # the queued cells' distances beside them in heap order: the sifts compare these without a
    # look-up in `dist` (which costs a cache miss more often than not on a large box)
    keys = np.empty(len(heap))
    for i in range(size):
        keys[i] = dist[heap[i]]
    while size > 0:
        x = heap[0]
        dx = keys[0]
        if dx > reach:
            break
        # pop the root: the last cell sifts down from the top, to the least of 4 children
        size -= 1
        if size > 0:
            last = heap[size]
            d_last = keys[size]
            i = 0
            while True:
                first = _ARITY * i + 1
                if first >= size:
                    break
                child = first
                d_child = keys[first]
                for j in range(first + 1, min(first + _ARITY, size)):
                    if keys[j] < d_child:
                        child = j
                        d_child = keys[j]
                if d_child >= d_last:
                    break
                heap[i] = heap[child]
                keys[i] = d_child
                slot[heap[i]] = i
                i = child
            heap[i] = last
            keys[i] = d_last
            slot[last] = i
        slot[x] = SETTLED
        if x == source:
            reach = dx
        r = x // cols
        c = x - r * cols
        hx = np.float64(h[top + r, left + c])
        for k in range(8):
            yr = r + d_row[k]
            yc = c + d_col[k]
            if yr < 0 or yr >= rows or yc < 0 or yc >= cols:
                continue
            y = yr * cols + yc
            if slot[y] == SETTLED or not (every or allowed[y]):
                continue
            w = (np.float64(h[top + yr, left + yc]) + hx) * half_steps[k]
            dy = dx + w
            if dy <= limit and dy < dist[y]:
                dist[y] = dy
                hop[y] = x
                if slot[y] == UNSEEN:
                    i = size
                    size += 1
                else:
                    i = slot[y]
                # sift up from its place
                while i > 0:
                    parent = (i - 1) // _ARITY
                    if keys[parent] <= dy:
                        break
                    heap[i] = heap[parent]
                    keys[i] = keys[parent]
                    slot[heap[i]] = i
                    i = parent
                heap[i] = y
                keys[i] = dy
                slot[y] = i
    queued[0] = size
    return source >= 0 and slot[source] == SETTLED


@kernel
def route(h, top, left, rows, cols, d_row, d_col, half_steps, dist, hop, source, target,
          grid_cols):
    """`(tied, cells)`: the route from local cell `source` to `target` following `hop`, as flat
    grid cells (int64; empty if the hops do not lead there), and whether a hop on it was
    decided by a tie, by `sim.world.routes.tied_on_route`'s rule with the weights `settle`
    uses (then `cells` is empty).

    `dist` and `hop` as `settle` leaves them once it has settled the source: a neighbour it
    did not settle holds more than the distance of any cell on the route, so it attains none
    of them, as in the search that ran to the end."""
    n = rows * cols
    length = 1
    x = source
    while x != target:
        x = hop[x]
        if x < 0 or length > n:
            return False, np.zeros(0, np.int64)
        length += 1
    cells = np.empty(length, np.int64)
    x = source
    for j in range(length):
        r = x // cols
        c = x - r * cols
        cells[j] = (top + r) * grid_cols + (left + c)
        if x != target:
            dy = dist[x]
            d_hop = dist[hop[x]]
            hy = np.float64(h[top + r, left + c])
            attaining = 0
            for k in range(8):
                xr = r + d_row[k]
                xc = c + d_col[k]
                if xr < 0 or xr >= rows or xc < 0 or xc >= cols:
                    continue
                dx = dist[xr * cols + xc]
                w = (np.float64(h[top + xr, left + xc]) + hy) * half_steps[k]
                if dx + w == dy and dx == d_hop:
                    attaining += 1
            if attaining > 1:
                return True, np.zeros(0, np.int64)
            x = hop[x]
    return False, cells


#: `settle_toward`'s heuristic is the octile distance to the start at `per_step` hours a step,
#: `per_step` a side step's least hours shrunk by this fraction: each step then weighs more
#: than the heuristic drops along it by that fraction of its hours, a margin far above the
#: rounding of the sums (see `settle_toward`).
TOWARD_SLACK = 1e-6

#: `settle_toward`'s answer holds if the start's distance is at most this many `per_step`s
#: (so `TOWARD_SLACK` of a step exceeds the rounding of any sum up to it 20 times over:
#: `1e-6 * per_step > 20 * 4 * 2**-53 * 1e7 * per_step`); farther, a caller runs `settle`.
TOWARD_MAX_STEPS = 1e7

_DIAGONAL_EXTRA = np.sqrt(2.0) - 1.0


@kernel
def settle_toward(h, top, left, rows, cols, d_row, d_col, half_steps, target, source, per_step,
                  dist, hop, slot, heap):
    """A* over the box of the layer `h` from `target` toward `source` (local cells): the state
    arrays `settle` keeps (of the box's size; this fills them), settled in the order of
    `dist[y] + per_step * octile(y, source)` (the octile distance in cells: `max(dr, dc) +
    (sqrt 2 - 1) min(dr, dc)`) until the source is. Returns whether it is (else it cannot
    reach the target).

    Why its answer is `settle`'s. `per_step` is at most a side step's least hours (the least
    `h` in the box times the cell's km) less `TOWARD_SLACK` of it, so the heuristic is
    consistent with a margin: along a step of `w` hours it drops by at most `(1 - e) w`
    (a diagonal step changes the octile distance by at most sqrt 2 and weighs at least sqrt 2
    side steps' least). Let `d` be `settle`'s distances, the least sums over the neighbours
    (`d[y] = min over x of fl(d[x] + w(x, y))`, unique as every weight is positive). A cell
    is popped with its `d`: else take its chain of cells attaining `d` back to the target
    and the first on it not popped, `q`; the one before it was popped with its `d`, so `q`
    is queued with `d[q]`, and its key is below the cell's by `e` times the chain's hours
    from `q` on, less the rounding of the sums along it (at most `4 * 2**-53` times the
    largest key per step, so below the margin while the distance is within
    `TOWARD_MAX_STEPS` steps): `q` would have been popped first. So every cell popped, the
    source and its route (each hop a popped cell) among them, holds `settle`'s distance, and
    every neighbour attaining it was popped before it (its key is lower by `e w`). `settle`
    scans cells by distance, so its hop is the first attaining neighbour scanned, the one
    nearest the target; this search scans by key, so an equal offer from a nearer neighbour
    replaces the hop: the same hop unless two attaining neighbours share the least distance,
    the tie `route` reports. `route`'s check sees the same attaining neighbours as after
    `settle` (a neighbour not popped holds at least its `d`, so attains nothing it does not
    attain there).
    """
    # The heap's pop and sift-up are `settle`'s, written out again: as shared functions (a
    # Numba call per pop and offer) the searches ran 7-8% slower on a 0.25 km theatre. A change
    # to one heap is a change to both.
    n = rows * cols
    for i in range(n):
        dist[i] = np.inf
        hop[i] = -1
        slot[i] = UNSEEN
    src_r = source // cols
    src_c = source - src_r * cols
    keys = np.empty(n)
    dist[target] = 0.0
    hop[target] = target
    slot[target] = 0
    heap[0] = target
    r = target // cols
    dr, dc = abs(r - src_r), abs(target - r * cols - src_c)
    keys[0] = per_step * (max(dr, dc) + _DIAGONAL_EXTRA * min(dr, dc))
    size = 1
    while size > 0:
        x = heap[0]
        dx = dist[x]
        size -= 1
        if size > 0:
            last = heap[size]
            k_last = keys[size]
            i = 0
            while True:
                first = _ARITY * i + 1
                if first >= size:
                    break
                child = first
                k_child = keys[first]
                for j in range(first + 1, min(first + _ARITY, size)):
                    if keys[j] < k_child:
                        child = j
                        k_child = keys[j]
                if k_child >= k_last:
                    break
                heap[i] = heap[child]
                keys[i] = k_child
                slot[heap[i]] = i
                i = child
            heap[i] = last
            keys[i] = k_last
            slot[last] = i
        slot[x] = SETTLED
        if x == source:
            return True
        r = x // cols
        c = x - r * cols
        hx = np.float64(h[top + r, left + c])
        for k in range(8):
            yr = r + d_row[k]
            yc = c + d_col[k]
            if yr < 0 or yr >= rows or yc < 0 or yc >= cols:
                continue
            y = yr * cols + yc
            if slot[y] == SETTLED:
                continue
            w = (np.float64(h[top + yr, left + yc]) + hx) * half_steps[k]
            dy = dx + w
            if dy < dist[y]:
                dist[y] = dy
                hop[y] = x
                dr, dc = abs(yr - src_r), abs(yc - src_c)
                ky = dy + per_step * (max(dr, dc) + _DIAGONAL_EXTRA * min(dr, dc))
                if slot[y] == UNSEEN:
                    i = size
                    size += 1
                else:
                    i = slot[y]
                while i > 0:
                    parent = (i - 1) // _ARITY
                    if keys[parent] <= ky:
                        break
                    heap[i] = heap[parent]
                    keys[i] = keys[parent]
                    slot[heap[i]] = i
                    i = parent
                heap[i] = y
                keys[i] = ky
                slot[y] = i
            elif dy == dist[y] and hop[y] >= 0 and dx < dist[hop[y]]:
                # an equal offer from a nearer cell: Dijkstra scans cells by distance, so its
                # hop is the attaining neighbour nearest the target; this one is scanned by key
                hop[y] = x
    return False
