"""Golden outputs: the sha256 of every bundled scenario's event log and daily metrics.

``python tests/golden_outputs.py`` prints the current hashes; ``--write`` stores them in
``tests/golden/hashes.json``. Only a change that alters behaviour *on purpose* rewrites that
file, in a commit of its own that says why (see docs/architecture.md, "Determinism").
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HASHES = Path(__file__).resolve().parent / "golden" / "hashes.json"
SEED = 11
DAYS = 10


def scenario_paths() -> list[Path]:
    return sorted((ROOT / "scenarios").glob("*.yaml"))


def hashes_of(path: Path) -> dict[str, object]:
    """sha256 of ``events.jsonl`` as `badia run` writes it and of the daily table's content."""
    from sim.engine.run import run_scenario
    from sim.experiments.single import events_jsonl

    result = run_scenario(path, seed=SEED, days=DAYS)
    daily = result.daily.to_csv(index=False, float_format="%.17g")
    return {
        "events": hashlib.sha256(events_jsonl(result.events).encode()).hexdigest(),
        "daily": hashlib.sha256(daily.encode()).hexdigest(),
        "n_events": len(result.events),
    }


def vector_extensions() -> list[str]:
    """The CPU's vector extensions numpy dispatches to above its baseline (AVX2, AVX-512...)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]


def main(argv: list[str]) -> int:
    current = {p.stem: hashes_of(p) for p in scenario_paths()}
    print(json.dumps(current, indent=1))
    if "--write" in argv:
        HASHES.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        print(f"wrote {HASHES}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
