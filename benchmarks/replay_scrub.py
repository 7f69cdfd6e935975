"""Replay benchmark: the theatre over 90 days, recorded, then scrubbed to random hours.

Usage:  .venv/bin/python benchmarks/replay_scrub.py [--days 90] [--hours 20]

Runs `badia run` on the theatre into a temporary folder (tracks every hour), reports the size of
`tracks.parquet` and `knowledge.parquet`, the time to open the replay, and per scrubbed hour:
the frame rebuilt from the stored arrays (`Replay.frame`) and the frame plus the map the app
sends (`map_figure` saved as PNG). The map's cost is the live app's (sim/app/map_frame.py); the
replay adds only the frame. The browser round trip comes on top (about 0.3 to 0.6 s on the
2-core development machine under load, measured with Playwright).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--hours", type=int, default=20, help="random hours scrubbed to")
    args = parser.parse_args(argv)

    from sim.app.map_frame import map_figure
    from sim.app.replay import open_replay
    from sim.app.style import figure_png
    from sim.cli import main as badia

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "theatre"
        t0 = time.perf_counter()
        badia(["run", str(REPO / "scenarios" / "badia_theatre.yaml"), "--days", str(args.days),
               "--quiet", "--out", str(out)])  # fmt: skip
        run_s = time.perf_counter() - t0
        sizes = {p.name: p.stat().st_size for p in sorted(out.glob("*.parquet"))}
        t0 = time.perf_counter()
        replay = open_replay(out)
        open_s = time.perf_counter() - t0
        figure_png(map_figure(replay.frame(0)))  # draws and caches the terrain once
        rng = np.random.default_rng(0)
        frame_ms, map_ms = [], []
        for hour in rng.integers(0, replay.last_hour + 1, args.hours):
            t0 = time.perf_counter()
            frame = replay.frame(int(hour))
            frame_ms.append((time.perf_counter() - t0) * 1000)
            figure_png(map_figure(frame))
            map_ms.append((time.perf_counter() - t0) * 1000)
    print(f"theatre, {args.days} days: run with tracks {run_s:.1f} s; "
          + ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in sizes.items()))
    print(f"open the replay: {open_s:.2f} s")
    print(f"scrub to a random hour ({args.hours} hours): frame median "
          f"{statistics.median(frame_ms):.1f} ms (max {max(frame_ms):.1f}); frame + map PNG "
          f"median {statistics.median(map_ms):.0f} ms (max {max(map_ms):.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
