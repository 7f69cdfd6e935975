"""Terrain caching: `build_terrain`, the one way to get a terrain, and its two caches.

Terrains are cached in-process (by a SHA-256 of the map spec's JSON, the config and the cache
format version) and on disk as `terrain-<hash>.npz` (arrays plus a JSON document; no pickle) in
the user's cache folder (`~/.cache/badia` on Linux); `BADIA_CACHE_DIR` overrides the directory.
A cache file that cannot be read, or was written for another hash or format version, is ignored
and rewritten. Cached terrains are shared: their arrays are read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

import networkx as nx
import numpy as np

from sim.scenario.map import MapSpec
from sim.world.build import compile_terrain
from sim.world.geo import Grid
from sim.world.raster import (
    BASE_LAYERS,
    DEFAULT_CONFIG,
    BorderInfo,
    PlaceInfo,
    Terrain,
    TerrainConfig,
    ZoneInfo,
    derive_layers,
    read_only,
)

CACHE_FORMAT_VERSION = 1
"""Bump when the layout of cached terrains or the build rules change."""

_MEMORY_CACHE: OrderedDict[str, Terrain] = OrderedDict()
_MEMORY_CACHE_SIZE = 8
_LOCK = threading.Lock()


def spec_hash(map_spec: MapSpec, config: TerrainConfig = DEFAULT_CONFIG) -> str:
    """SHA-256 of the map spec's canonical JSON, the config and the cache format version."""
    doc = json.dumps({
        "format": CACHE_FORMAT_VERSION,
        "spec": map_spec.model_dump(mode="json", by_alias=True),
        "config": config.key(),
    }, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def cache_dir() -> Path:
    """Disk cache folder: `$BADIA_CACHE_DIR`, else the user's cache folder for badia
    (`platformdirs.user_cache_dir("badia")`: `~/.cache/badia` on Linux, honouring
    `$XDG_CACHE_HOME`), never the installed package or the checkout."""
    env = os.environ.get("BADIA_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("badia", appauthor=False))


def cache_path(h: str) -> Path:
    """Where the terrain with spec hash `h` is cached on disk."""
    return cache_dir() / f"terrain-{h[:24]}.npz"


def clear_memory_cache() -> None:
    """Forget the in-process terrains (the disk cache stays)."""
    with _LOCK:
        _MEMORY_CACHE.clear()


def build_terrain(
    map_spec: MapSpec,
    source: str = "<map>",
    *,
    config: TerrainConfig = DEFAULT_CONFIG,
    cache: bool = True,
) -> Terrain:
    """Compile a map spec into a `Terrain` (cached in-process and on disk unless `cache=False`).

    The same spec returns the identical (shared, read-only) object within a process. Seeded parts
    (texture, scattered caves) draw from `map.texture.seed` (0 without a texture) and the area's
    name, so a map is the same in every run and process. Raises `TerrainError` (a
    `ScenarioError`) naming `source` and the field for maps that cannot be compiled.
    """
    h = spec_hash(map_spec, config)
    if cache:
        with _LOCK:
            hit = _MEMORY_CACHE.get(h)
            if hit is not None:
                _MEMORY_CACHE.move_to_end(h)
                return hit
        terrain = load_cached(h, config)
        if terrain is None:
            terrain = compile_terrain(map_spec, source, config, h)
            terrain.make_read_only()
            save_cached(terrain)
        with _LOCK:
            _MEMORY_CACHE[h] = terrain
            while len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
                _MEMORY_CACHE.popitem(last=False)
        return terrain
    terrain = compile_terrain(map_spec, source, config, h)
    terrain.make_read_only()
    return terrain


def save_cached(t: Terrain) -> Path | None:
    """Write `t` to the disk cache atomically; returns the path (None if the folder is unusable)."""
    path = cache_path(t.spec_hash)
    g = t.road_graph
    edges = list(g.edges(data=True))
    cells = [e[2]["cells"] for e in edges]
    offsets = np.cumsum([0] + [len(c) for c in cells]).astype(np.int64)
    meta = {
        "format": CACHE_FORMAT_VERSION,
        "hash": t.spec_hash,
        "grid": t.grid.to_dict(),
        "is_ascii": t.is_ascii,
        "places": [[p.name, p.kind, p.row, p.col, p.water, p.lat, p.lon, p.radius_km]
                   for p in t.places.values()],
        "zones": [[z.name, sorted(z.barred), z.guarded_by] for z in t.zones],
        "borders": [[b.name, list(b.sides), [list(p) for p in b.points], list(b.crossings)]
                    for b in t.borders],
        "areas": [[n, t.area_kinds[n]] for n in t.areas],
        "nodes": [[n, list(d["cell"]), d["lat"], d["lon"], d["place"]]
                  for n, d in g.nodes(data=True)],
        "edges": [[a, b, d["length_km"], d["road"], d["cls"]] for a, b, d in edges],
    }
    arrays = {n: getattr(t, n) for n in BASE_LAYERS}
    arrays["areas"] = (np.stack(list(t.areas.values())) if t.areas
                       else np.zeros((0, *t.shape), bool))
    arrays["edge_cells"] = (np.concatenate(cells).astype(np.int32) if cells
                            else np.zeros((0, 2), np.int32))
    arrays["edge_offsets"] = offsets
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)     # atomic: readers never see a half-written file
    except OSError:
        # an unwritable cache only costs a rebuild next time
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return None
    return path


def load_cached(h: str, config: TerrainConfig = DEFAULT_CONFIG) -> Terrain | None:
    """The terrain cached on disk under hash `h`, or None if absent, stale or unreadable."""
    path = cache_path(h)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["format"] != CACHE_FORMAT_VERSION or meta["hash"] != h:
                return None
            grid = Grid(**meta["grid"])
            layers = {n: z[n] for n in BASE_LAYERS}
            area_stack = z["areas"]
            edge_cells = z["edge_cells"]
            offsets = z["edge_offsets"]
        for n in BASE_LAYERS:
            want = grid.shape if n != "border_side" else (len(meta["borders"]), *grid.shape)
            if layers[n].shape != want:
                return None
        g = nx.Graph()
        for name, cell, lat, lon, place in meta["nodes"]:
            g.add_node(name, cell=(cell[0], cell[1]), lat=lat, lon=lon, place=place)
        for k, (a, b, length, road, cls) in enumerate(meta["edges"]):
            g.add_edge(a, b, length_km=length, road=road, cls=cls,
                       cells=read_only(edge_cells[offsets[k]:offsets[k + 1]]))
        t = Terrain(
            grid=grid, **layers,
            zones=[ZoneInfo(n, frozenset(b), gb) for n, b, gb in meta["zones"]],
            borders=[BorderInfo(n, (s[0], s[1]), tuple((p[0], p[1]) for p in pts), tuple(c))
                     for n, s, pts, c in meta["borders"]],
            places={p[0]: PlaceInfo(*p) for p in meta["places"]},
            areas={n: area_stack[i] for i, (n, _) in enumerate(meta["areas"])},
            area_kinds={n: k for n, k in meta["areas"]},
            road_graph=g, config=config, spec_hash=h, is_ascii=meta["is_ascii"])
        derive_layers(t)
        t.make_read_only()
        return t
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError,
            zipfile.BadZipFile):
        # a truncated or foreign file: ignore it, the caller rebuilds and overwrites it
        return None
