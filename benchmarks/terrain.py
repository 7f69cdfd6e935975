"""Terrain benchmark: cold build, cached load, peak memory and one Dijkstra cost field.

Usage:  .venv/bin/python benchmarks/terrain.py [--scenario scenarios/badia_theatre.yaml]

Targets for the 1 km theatre: cold build < 2 s, cached load < 0.1 s, peak memory < 300 MB.
The disk cache goes to a temporary folder, so the repo's `.badia-cache/` is left alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_FRESH_LOAD = """
import sys, time
t0 = time.perf_counter()
from sim.scenario.loading import load_scenario
from sim.world import cache as T
imported = time.perf_counter()
s = load_scenario(sys.argv[1])
loaded = time.perf_counter()
t = T.build_terrain(s.map, sys.argv[1])
done = time.perf_counter()
assert T.load_cached(t.spec_hash) is not None
print(f"{imported - t0:.4f} {loaded - imported:.4f} {done - loaded:.4f}")
"""


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(REPO / "scenarios" / "badia_theatre.yaml"))
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best is shown)")
    args = parser.parse_args(argv)

    cache = tempfile.mkdtemp(prefix="badia-bench-")
    os.environ["BADIA_CACHE_DIR"] = cache

    from sim.scenario.loading import load_scenario
    from sim.world import cache as T
    from sim.world.routes import Router

    scenario = load_scenario(args.scenario)
    spec = scenario.map

    cold = _best(lambda: T.build_terrain(spec, args.scenario, cache=False), args.repeat)

    terrain = T.build_terrain(spec, args.scenario)          # writes the disk cache
    size_mb = T.cache_path(terrain.spec_hash).stat().st_size / 1e6

    def cached_load() -> None:
        T.clear_memory_cache()
        T.build_terrain(spec, args.scenario)

    cached = _best(cached_load, args.repeat)
    t0 = time.perf_counter()
    T.build_terrain(spec, args.scenario)
    memory_hit = time.perf_counter() - t0

    fresh = subprocess.run([sys.executable, "-c", _FRESH_LOAD, args.scenario], cwd=REPO,
                           capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    f_import, f_scenario, f_load = (float(x) for x in fresh.stdout.split())

    router = Router(terrain)
    barred = terrain.barred_zones("government")
    targets = [p.cell for p in list(terrain.places.values())[: args.repeat + 1]]
    t0 = time.perf_counter()
    router.cost_field(targets[0], "offroad", barred)
    first_field = time.perf_counter() - t0
    more = []
    for cell in targets[1:]:
        t0 = time.perf_counter()
        router.cost_field(cell, "offroad", barred)
        more.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    router.cost_field(targets[0], "offroad", barred)
    field_hit = time.perf_counter() - t0

    tracemalloc.start()
    T.build_terrain(spec, args.scenario, cache=False)
    _, peak_build = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    Router(terrain).cost_field(targets[0], "offroad", barred)
    _, peak_field = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows, cols = terrain.shape
    print(f"scenario       {args.scenario}: {rows} x {cols} cells of {terrain.cell_km:g} km, "
          f"{terrain.road_graph.number_of_edges()} road edges")
    print(f"cold build     {cold * 1000:8.1f} ms  (best of {args.repeat}; target < 2000 ms)")
    print(f"cached load    {cached * 1000:8.1f} ms  (disk, in-process cache cleared; "
          f"target < 100 ms; file {size_mb:.1f} MB)")
    print(f"  fresh proc   {f_load * 1000:8.1f} ms  load from disk in a new process "
          f"(+ imports {f_import * 1000:.0f} ms, scenario parse {f_scenario * 1000:.0f} ms)")
    print(f"  memory hit   {memory_hit * 1e6:8.1f} us")
    print(f"cost field     {first_field * 1000:8.1f} ms  first (builds the CSR graph), "
          f"then {min(more) * 1000:.1f} ms per new target; cached {field_hit * 1e6:.1f} us")
    print(f"peak memory    {peak_build / 1e6:8.1f} MB  traced during a cold build; "
          f"{peak_field / 1e6:.1f} MB for graph + field; process max RSS {maxrss_mb:.0f} MB "
          f"(target < 300 MB)")
    ok = cold < 2.0 and cached < 0.1 and maxrss_mb < 300
    print("targets        " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
