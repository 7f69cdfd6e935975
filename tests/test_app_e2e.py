"""The real app in a real browser: `badia viz` on 127.0.0.1, driven by headless Chromium.

Debian's /usr/bin/chromium through Playwright (see tests/browser.py; never a browser download,
and a missing chromium fails the test). The page may reach only 127.0.0.1: solara's front end
comes from the local asset cache. The last screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from browser import serve

from sim.app.scenarios import slider_specs
from sim.scenario.loading import load_scenario

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
SCENARIO = REPO / "scenarios" / "outpost_night_raid.yaml"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def badia_viz() -> list[str]:
    """`badia viz SCENARIO` (the console script next to this Python, else its module)."""
    script = Path(sys.executable).with_name("badia")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "sim.cli"]
    return [*head, "viz", str(SCENARIO), "--host", "{host}", "--port", "{port}"]


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


def test_app_loads_steps_and_resets_with_a_new_parameter(offline_page):
    page = offline_page
    scenario = load_scenario(SCENARIO)
    patrols = next(s for s in slider_specs(scenario) if s.name == "patrols").value
    government = sum(u.count for u in scenario.units if u.faction == "government")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "viz_e2e.png"
    with serve(badia_viz(), cwd=REPO) as url:
        page.goto(url)
        try:
            # the page: map image and plots image shown (loaded, not broken), controls present
            map_img = page.locator(".badia-map img").first
            plots_img = page.locator(".badia-plots img").first
            map_img.wait_for(state="visible", timeout=60_000)
            plots_img.wait_for(state="visible", timeout=30_000)
            for img in (map_img, plots_img):
                assert img.evaluate("i => i.complete && i.naturalWidth > 300")
            clock = page.locator(".badia-clock").first.inner_text()
            assert "hour 0 of" in clock
            before = map_img.screenshot()

            # Step: the clock advances by one hour and the map is redrawn
            page.get_by_role("button", name="Step").click()
            wait_for_text(page, ".badia-clock", lambda t: "hour 1 of" in t)
            assert map_img.screenshot() != before

            # a slider moved, then Reset: the model is rebuilt with the new value
            slider = page.get_by_role("slider", name="Patrols (total)")
            assert slider.get_attribute("aria-valuenow") == str(patrols)
            slider.focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            assert slider.get_attribute("aria-valuenow") == str(patrols + 2)
            page.get_by_role("button", name="Reset").click()
            status = wait_for_text(page, ".badia-status",
                                   lambda t: f"Patrols {patrols + 2} (set)" in t)  # fmt: skip
            assert "hour 0 of" in page.locator(".badia-clock").first.inner_text()
            assert f"government {government + 2}" in status  # two more patrol units
            time.sleep(0.5)  # let the redrawn map arrive before the screenshot
        finally:
            page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # nothing tried to leave the machine, every local request succeeded, no script errors
    assert page.blocked == []
    assert page.failed == []
    assert page.errors == []

