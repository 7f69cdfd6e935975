"""The real app in a real browser: `badia viz` on 127.0.0.1, driven by headless Chromium.

Debian's /usr/bin/chromium through Playwright (see tests/browser.py; never a browser download,
and a missing chromium fails the test). The page may reach only 127.0.0.1: solara's front end
comes from the local asset cache. The last screenshot is kept in test-artifacts/.

One server per scenario for the module (starting one takes seconds); each test opens its own
page, which is its own session and model.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from browser import serve

from sim.app.map_frame import _known
from sim.app.model import VizModel
from sim.app.scenarios import slider_specs
from sim.app.status import event_lines
from sim.scenario.loading import load_scenario

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
SCENARIO = REPO / "scenarios" / "outpost_night_raid.yaml"
THEATRE = REPO / "scenarios" / "badia_theatre.yaml"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def badia_viz(scenario: Path = SCENARIO) -> list[str]:
    """`badia viz SCENARIO` (the console script next to this Python, else its module)."""
    script = Path(sys.executable).with_name("badia")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "sim.cli"]
    return [*head, "viz", str(scenario), "--host", "{host}", "--port", "{port}"]


@pytest.fixture(scope="module")
def outpost_url():
    with serve(badia_viz(), cwd=REPO) as url:
        yield url


def wait_for_text(page, selector: str, predicate, timeout_s: float = 30.0) -> str:
    """Poll the text of ``selector`` until ``predicate(text)``; fails with the last text seen."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        loc = page.locator(selector)
        text = loc.first.inner_text() if loc.count() else ""
        if predicate(text):
            return text
        time.sleep(0.2)
    pytest.fail(f"{selector} never matched within {timeout_s:.0f} s; last text: {text!r}")


def _overlay(page) -> str:
    return page.locator(".badia-overlay").first.evaluate("e => e.outerHTML")


def _open(page, url: str) -> None:
    page.goto(url)
    page.locator(".badia-overlay").first.wait_for(state="attached", timeout=60_000)
    page.locator(".badia-map-stack img").first.wait_for(state="visible", timeout=30_000)


def test_app_loads_offline_steps_and_resets_with_a_new_parameter(offline_page, outpost_url):
    page = offline_page
    scenario = load_scenario(SCENARIO)
    patrols = next(s for s in slider_specs(scenario) if s.name == "patrols").value
    government = sum(u.count for u in scenario.units if u.faction == "government")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "viz_e2e.png"
    _open(page, outpost_url)
    try:
        # the terrain images are shown (loaded, not broken), the plots are drawn
        for img in page.locator(".badia-map-stack img").all():
            assert img.evaluate("i => i.complete && i.naturalWidth > 300")
        assert page.locator(".badia-plots .badia-chart svg").count() >= 3
        assert "hour 0 of" in page.locator(".badia-clock").first.inner_text()
        before = _overlay(page)
        assert 'data-hour="0"' in before

        # Step: the clock, the map's overlay and the plots show the next hour
        page.get_by_role("button", name="Step", exact=True).click()
        wait_for_text(page, ".badia-clock", lambda t: "hour 1 of" in t)
        page.wait_for_function("() => document.querySelector('.badia-plot-panel')"
                               ".getAttribute('data-hour') === '1'")  # fmt: skip
        after = _overlay(page)
        assert 'data-hour="1"' in after and after != before

        # three quick clicks are three hours: clicks made during a step are queued
        step = page.get_by_role("button", name="Step", exact=True)
        for _ in range(3):
            step.click()
        wait_for_text(page, ".badia-clock", lambda t: "hour 4 of" in t)

        # a slider moved shows a pending change; Reset rebuilds the model with the new value
        slider = page.get_by_role("slider", name="Patrols (total)")
        assert slider.get_attribute("aria-valuenow") == str(patrols)
        slider.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        assert slider.get_attribute("aria-valuenow") == str(patrols + 2)
        wait_for_text(page, ".badia-pending", lambda t: "pending: Reset applies" in t)
        page.get_by_role("button", name="Reset").click()
        status = wait_for_text(page, ".badia-status",
                               lambda t: f"Patrols {patrols + 2} (set)" in t)  # fmt: skip
        assert "hour 0 of" in page.locator(".badia-clock").first.inner_text()
        assert f"government {government + 2}" in status  # two more patrol units
        assert "pending" not in page.locator(".badia-pending").first.inner_text()
        time.sleep(0.5)  # let the redrawn map arrive before the screenshot
    finally:
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # nothing tried to leave the machine, every local request succeeded, no script errors
    assert page.blocked == []
    assert page.failed == []
    assert page.errors == []


def test_path_field_refuses_files_outside_the_allowed_folders(offline_page, outpost_url,
                                                              tmp_path):
    """A visitor who types a path to a file the app may not open is told so, and the answer
    holds nothing of the file (nor whether it exists)."""
    page = offline_page
    secret = tmp_path / "secret.yaml"  # outside the bundled scenarios and the server's folder
    secret.write_text("db_password: hunter2\nmap: hunter2\n")
    _open(page, outpost_url)
    field = page.get_by_label("...or a scenario file (path)")
    for path, contents in ((secret, ("hunter2", "db_password")), (Path("/etc/passwd"),
                                                                   ("root:", "/bin/"))):
        field.fill(str(path))
        field.press("Enter")
        page.get_by_role("button", name="Reset").click()
        notice = wait_for_text(page, ".badia-notice",
                               lambda t, p=path: str(p) in t and "not a scenario file" in t)
        assert not any(c in notice for c in contents), notice
        assert "outpost" in page.locator(".badia-status").first.inner_text()  # still the same
    assert page.blocked == [] and page.errors == []


def test_viewpoint_event_list_hides_units_that_side_does_not_know(offline_page):
    """The theatre after five hours: the umpire's event list names insurgent cells the
    government has not seen; the government's viewpoint lists none of them."""
    page = offline_page
    hours = 5
    replica = VizModel(scenario_path=str(THEATRE))  # the app's model, same seed: same run
    replica.run_for_hours(hours)
    gov = replica.faction_index["government"]
    known = {replica.units[i].name for i in _known(replica, gov)[0].tolist()}
    unknown = {u.name for u in replica.units if u.faction == "insurgents"} - known
    umpire_lines = "\n".join(event_lines(replica))
    hidden = {n for n in unknown if n in umpire_lines}
    assert hidden, "the scenario changed: no unknown insurgent in the umpire's events"
    with serve(badia_viz(THEATRE), cwd=REPO) as url:
        _open(page, url)
        step = page.get_by_role("button", name="Step", exact=True)
        for _ in range(hours):
            step.click()
        wait_for_text(page, ".badia-clock", lambda t: f"hour {hours} of" in t, 60)
        events = wait_for_text(page, ".badia-events", lambda t: all(n in t for n in hidden))
        page.get_by_role("button", name="Viewpoint").click()
        page.get_by_role("option", name="government: what it knows").click()
        events = wait_for_text(page, ".badia-events-title", lambda t: "government" in t)
        events = page.locator(".badia-events").first.inner_text()
        assert not any(n in events for n in hidden), events
        assert page.blocked == [] and page.errors == []
