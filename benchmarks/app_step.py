"""Browser app benchmark: Step and Play on the theatre, timed in Chromium.

Usage:  .venv/bin/python benchmarks/app_step.py [--scenario scenarios/badia_theatre.yaml]
                                                [--steps 15] [--play-seconds 10] [--runs 3]

Starts `badia viz SCENARIO` on a free local port and drives Debian's /usr/bin/chromium with
Playwright (never a browser download). Each run opens a fresh page and

- **Step**: clicks Step `--steps` times, one at a time, and times each from the click to the
  moment the browser shows the next hour in the clock, a new map and new plots (polled every
  animation frame, so the figure includes the model step, drawing, transfer and the page update);
- **Play**: presses play for `--play-seconds` and counts the hours shown per second.

It prints min / median / max over all steps and over the runs' play rates. Targets: Step under
250 ms, playing at 4 or more steps per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

STEP_BUDGET_MS = 250.0
PLAY_TARGET = 4.0

# A signature of what the page shows: the clock's text and what the map and the plots draw (the
# `data-hour` of the app's layers, else the images' sources), so a change of any of them is seen.
_SIGNATURE = """() => {
  const txt = s => { const e = document.querySelector(s); return e ? e.innerText : ''; };
  const sig = s => Array.from(document.querySelectorAll(s + ' [data-hour], ' + s + ' img'))
      .map(e => e.getAttribute('data-hour') || (e.src || '').length + (e.src || '').slice(-64))
      .join('|');
  return [txt('.badia-clock'), sig('.badia-map'), sig('.badia-plots')];
}"""

_STEP = """async (hour) => {
  const sig = SIGNATURE;
  const before = sig();
  const btn = Array.from(document.querySelectorAll('button'))
      .find(b => b.innerText.trim().toLowerCase() === 'step');
  const t0 = performance.now();
  btn.click();
  while (true) {
    await new Promise(r => requestAnimationFrame(r));
    const now = sig();
    if (now[0].includes('hour ' + hour + ' of') && now[1] !== before[1] && now[2] !== before[2])
      return performance.now() - t0;
    if (performance.now() - t0 > 30000) return -1;
  }
}""".replace("SIGNATURE", _SIGNATURE)


def _hour(page) -> int:
    text = page.locator(".badia-clock").first.inner_text()
    return int(text.split("hour ")[1].split(" of")[0])


def _summary(values: list[float]) -> str:
    return (f"min {min(values):.0f}, median {statistics.median(values):.0f}, "
            f"max {max(values):.0f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(REPO / "scenarios" / "badia_theatre.yaml"))
    parser.add_argument("--steps", type=int, default=15, help="Step clicks timed per run")
    parser.add_argument("--play-seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--viewport", default="1280x800")
    args = parser.parse_args(argv)

    from browser import launch_chromium, offline_page_in, serve

    script = Path(sys.executable).with_name("badia")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "sim.cli"]
    cmd = [*head, "viz", args.scenario, "--host", "{host}", "--port", "{port}"]
    width, height = (int(v) for v in args.viewport.split("x"))
    steps: list[float] = []
    rates: list[float] = []
    with serve(cmd, cwd=REPO) as url, launch_chromium() as browser:
        for run in range(args.runs):
            with offline_page_in(browser, viewport=(width, height)) as page:
                page.goto(url)
                page.locator(".badia-clock").first.wait_for(timeout=120_000)
                page.get_by_role("button", name="Step").wait_for()
                time.sleep(1.0)  # let the first frame settle
                start = _hour(page)
                run_steps = []
                for i in range(args.steps):
                    ms = page.evaluate(_STEP, start + i + 1)
                    if ms < 0:
                        print(f"run {run + 1}: step {i + 1} never showed", file=sys.stderr)
                        return 1
                    run_steps.append(ms)
                steps += run_steps
                # play: hours shown per second of wall clock
                h0 = _hour(page)
                page.get_by_role("button", name="▶").click()
                t0 = time.perf_counter()
                time.sleep(args.play_seconds)
                h1 = _hour(page)
                elapsed = time.perf_counter() - t0
                page.get_by_role("button", name="❚❚").click()
                rate = (h1 - h0) / elapsed
                rates.append(rate)
                print(f"run {run + 1}: step ms {_summary(run_steps)}; "
                      f"play {rate:.2f} steps/s ({h1 - h0} hours in {elapsed:.1f} s)")
    print(f"Step, click to updated map and plots ({len(steps)} steps): {_summary(steps)} ms "
          f"(target < {STEP_BUDGET_MS:.0f})")
    print(f"Play ({len(rates)} runs): min {min(rates):.2f}, median {statistics.median(rates):.2f}, "
          f"max {max(rates):.2f} steps/s (target >= {PLAY_TARGET:g})")
    ok = statistics.median(steps) < STEP_BUDGET_MS and statistics.median(rates) >= PLAY_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
