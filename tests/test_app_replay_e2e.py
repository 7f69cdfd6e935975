"""A replay in a real browser: `badia viz --replay RUN_DIR` on 127.0.0.1, driven by headless
Chromium (tests/browser.py; offline, never a browser download). The reviewer moves the slider,
jumps to "day 2, 02:00" and plays: the clock, the map and a unit's position follow the run's
stored tracks. The last screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from browser import serve

from sim.app.replay import open_replay
from sim.app.replay_page import unit_text
from sim.cli import main

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
SCENARIO = REPO / "scenarios" / "outpost_night_raid.yaml"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def wait_for_text(page, selector: str, predicate, timeout_s: float = 30.0) -> str:
    """Poll the text of ``selector`` until ``predicate(text)``; fails with the last text seen."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = page.locator(selector).first.inner_text()
        if predicate(text):
            return text
        time.sleep(0.2)
    pytest.fail(f"{selector} never matched within {timeout_s:.0f} s; last text: {text!r}")


def test_replay_scrubs_jumps_and_plays_from_the_stored_run(offline_page, tmp_path):
    run = tmp_path / "run"
    assert main(["run", str(SCENARIO), "--days", "2", "--quiet", "--out", str(run)]) == 0
    replay = open_replay(run)
    jump = replay.parse_when("day 2, 02:00")
    unit = replay.unit_meta[-1][0]  # an insurgent cell (listed last in the scenario)
    where_then = unit_text(replay, replay.frame(jump), unit)
    assert unit in where_then and "row" in where_then

    script = Path(sys.executable).with_name("badia")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "sim.cli"]
    cmd = [*head, "viz", "--replay", str(run), "--host", "{host}", "--port", "{port}"]
    page = offline_page
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "replay_e2e.png"
    with serve(cmd, cwd=REPO) as url:
        page.goto(url)
        try:
            map_img = page.locator(".badia-map img").first
            map_img.wait_for(state="visible", timeout=60_000)
            assert map_img.evaluate("i => i.complete && i.naturalWidth > 300")
            wait_for_text(page, ".badia-clock", lambda t: t.startswith(replay.when_text(0)))
            before = map_img.screenshot()

            # the slider, three hours on: the clock says so and the map is redrawn
            slider = page.get_by_role("slider", name="Time (hours, every 1 h)")
            slider.focus()
            for _ in range(3):
                page.keyboard.press("ArrowRight")
            wait_for_text(page, ".badia-clock",
                          lambda t: t.startswith(f"{replay.when_text(3)} ") and "hour 3 of" in t)
            assert slider.get_attribute("aria-valuenow") == "3"
            deadline = time.monotonic() + 15
            while map_img.screenshot() == before and time.monotonic() < deadline:
                time.sleep(0.2)
            assert map_img.screenshot() != before

            # go to "day 2, 02:00": the clock, the slider and a known unit's position
            box = page.get_by_label("Go to (e.g. day 12, 02:00)")
            box.fill("day 2, 02:00")
            box.press("Enter")
            wait_for_text(page, ".badia-clock", lambda t: t.startswith("day 2, 02:00 ")
                          and f"hour {jump} of" in t)  # fmt: skip
            assert slider.get_attribute("aria-valuenow") == str(jump)
            page.get_by_label("Unit").locator("xpath=..").click()  # the select's box
            page.get_by_role("option", name=unit, exact=True).click()
            wait_for_text(page, ".badia-unit", lambda t: t == where_then)

            # play moves the clock on by itself; pause stops it
            page.get_by_role("button", name="Play").click()
            wait_for_text(page, ".badia-clock", lambda t: f"hour {jump} of" not in t)
            page.get_by_role("button", name="Pause").click()
            page.get_by_role("button", name="Play").wait_for(timeout=10_000)
            time.sleep(1.0)  # a frame already asked for may still arrive
            stopped = page.locator(".badia-clock").first.inner_text()
            time.sleep(1.5)  # playing at 4 hours per second would have moved it on
            assert page.locator(".badia-clock").first.inner_text() == stopped
        finally:
            page.screenshot(path=str(shot), full_page=True)
    assert page.blocked == []
    assert page.failed == []
    assert page.errors == []
