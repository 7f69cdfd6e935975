"""The README's set-up: the Python finder, the offline solara assets, SolaraViz with no internet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import textwrap
import urllib.request
from pathlib import Path

import pytest
from browser import serve, solara_command

from sim.app import assets

ROOT = Path(__file__).resolve().parents[1]
FIND_PYTHON = ROOT / "scripts" / "find-python"
REAL_PYTHON = Path(os.path.realpath(sys.executable))  # the base interpreter behind .venv (>= 3.12)


# ---------------------------------------------------------------- scripts/find-python


def _fake_old_python(directory: Path) -> Path:
    """A ``python3`` that fails the version check, like Debian's 3.11."""
    exe = directory / "python3"
    exe.write_text("#!/bin/sh\n# pretends to be Python 3.11: the >= 3.12 check exits 1\nexit 1\n")
    exe.chmod(0o755)
    return exe


def _find_python(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FIND_PYTHON)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _version_of(python: str) -> tuple[int, int]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    major, minor = out.stdout.split()
    return int(major), int(minor)


@pytest.mark.parametrize("where", ["PYENV_ROOT", "HOME/.pyenv"])
def test_find_python_skips_old_python_on_path_and_finds_pyenv_install(tmp_path, where):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_old_python(bin_dir)
    home = tmp_path / "home"
    root = tmp_path / "pyenv" if where == "PYENV_ROOT" else home / ".pyenv"
    exe = root / "versions" / "3.12.99" / "bin" / "python3"
    exe.parent.mkdir(parents=True)
    exe.symlink_to(REAL_PYTHON)
    env = {"PATH": str(bin_dir), "HOME": str(home)}
    if where == "PYENV_ROOT":
        env["PYENV_ROOT"] = str(root)

    res = _find_python(env)

    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(exe)
    assert _version_of(res.stdout.strip()) >= (3, 12)


def test_find_python_prefers_a_new_enough_python_on_path(tmp_path):
    (tmp_path / "python3.12").symlink_to(REAL_PYTHON)
    res = _find_python({"PATH": str(tmp_path), "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(tmp_path / "python3.12")


def test_find_python_fails_with_one_clear_line_when_none_is_new_enough(tmp_path):
    _fake_old_python(tmp_path)
    res = _find_python({"PATH": str(tmp_path), "HOME": str(tmp_path / "nohome")})
    assert res.returncode == 1
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert ">= 3.12" in lines[0] and "PYTHON=" in lines[0]


def test_find_python_honours_PYTHON_and_rejects_a_bad_one(tmp_path):
    (tmp_path / "python3.12").symlink_to(REAL_PYTHON)  # a good one on PATH must not be used
    (tmp_path / "old").mkdir()
    old = _fake_old_python(tmp_path / "old")
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}

    bad = _find_python({**env, "PYTHON": str(old)})
    assert bad.returncode == 1
    assert f"PYTHON={old}" in bad.stderr and bad.stdout == ""

    good = _find_python({**env, "PYTHON": str(REAL_PYTHON)})
    assert good.returncode == 0
    assert good.stdout.strip() == str(REAL_PYTHON)


# ---------------------------------------------------------------- sim.app.assets: fetch and unpack


def _tarball(path: Path, top: str, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def fake_npm(tmp_path):
    """An ``npm`` that serves prepared tarballs for ``npm pack`` and logs each call."""
    registry = tmp_path / "registry"
    registry.mkdir()
    log = tmp_path / "npm-calls.log"
    script = tmp_path / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import json, shutil, sys
            from pathlib import Path
            args = sys.argv[1:]
            with open({str(log)!r}, "a") as f:
                f.write(" ".join(args) + "\\n")
            dest = Path(args[args.index("--pack-destination") + 1])
            out = []
            for spec in [a for a in args[1:] if not a.startswith("--") and a != str(dest)]:
                name, _, ver = spec.rpartition("@")
                src = Path({str(registry)!r}) / (spec.replace("/", "_") + ".tgz")
                if not src.exists():
                    print(f"npm ERR! 404 Not Found - {{spec}}", file=sys.stderr)
                    sys.exit(1)
                shutil.copy(src, dest / src.name)
                out.append({{"name": name, "version": ver, "filename": src.name}})
            print(json.dumps(out))
            """
        )
    )
    script.chmod(0o755)

    def calls() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    return script, registry, calls


def _two_assets() -> list[assets.Asset]:
    return [
        assets.Asset("@scope/app", "1.0.0", "page", ["dist/app.min.js", "dist/app.css"]),
        assets.Asset("lib", "2", "solaraviz", ["lib.min.js"]),
    ]


def _publish_two(registry: Path) -> None:
    _tarball(
        registry / "@scope_app@1.0.0.tgz",
        "package",
        {"dist/app.min.js": b"app-js", "dist/app.css": b"app-css", "package.json": b"{}"},
    )
    # An old-style tarball whose top folder is not "package/", shipping only the unminified file.
    _tarball(registry / "lib@2.tgz", "lib", {"lib.js": b"lib-js"})


def test_ensure_assets_unpacks_npm_tarballs_in_solara_cache_layout(tmp_path, fake_npm):
    npm, registry, calls = fake_npm
    _publish_two(registry)
    cache = tmp_path / "cdn"
    wanted = _two_assets()
    assert len(assets.missing_files(wanted, cache)) == 3

    fetched = assets.ensure_assets(wanted, cache, npm=str(npm), log=lambda _msg: None)

    assert {a.key for a in fetched} == {"@scope/app@1.0.0", "lib@2"}
    assert assets.missing_files(wanted, cache) == []
    assert (cache / "@scope/app@1.0.0/dist/app.min.js").read_bytes() == b"app-js"
    assert (cache / "@scope/app@1.0.0/package.json").exists()  # the whole package, as jsdelivr has
    # jsdelivr minifies on the fly; the cache gets the unminified code under the requested name
    assert (cache / "lib@2/lib.min.js").read_bytes() == b"lib-js"
    assert len(calls()) == 1  # one npm call for all packages

    # idempotent: nothing missing, so npm is not called again
    assert assets.ensure_assets(wanted, cache, npm=str(npm), log=lambda _msg: None) == []
    assert len(calls()) == 1


def test_ensure_assets_completes_a_partial_folder_without_overwriting(tmp_path, fake_npm):
    npm, registry, _calls = fake_npm
    _publish_two(registry)
    cache = tmp_path / "cdn"
    kept = cache / "@scope/app@1.0.0/dist/app.css"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"fetched-earlier")

    assets.ensure_assets(_two_assets(), cache, npm=str(npm), log=lambda _msg: None)

    assert kept.read_bytes() == b"fetched-earlier"
    assert (cache / "@scope/app@1.0.0/dist/app.min.js").read_bytes() == b"app-js"
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_ensure_assets_reports_npm_failures_in_one_line(tmp_path, fake_npm):
    npm, _registry, _calls = fake_npm  # an empty registry: every package is a 404
    with pytest.raises(assets.AssetError, match="404") as err:
        assets.ensure_assets(_two_assets(), tmp_path / "cdn", npm=str(npm), log=lambda _m: None)
    assert "\n" not in str(err.value)
    with pytest.raises(assets.AssetError, match="not found on PATH"):
        assets.ensure_assets(_two_assets(), tmp_path / "cdn", npm="no-such-npm-here")


def test_discovery_resolves_versions_in_components_and_falls_back_for_the_page(
    tmp_path, monkeypatch
):
    fake = tmp_path / "solara"
    (fake / "widgets" / "vue").mkdir(parents=True)
    (fake / "widgets" / "vue" / "gridlayout.vue").write_text(
        'const version = "9.8.7";\n'
        "await this.import([`${this.getCdn()}/@widgetti/grid@${version}/dist/grid.umd.js`])\n"
    )
    (fake / "components").mkdir()
    (fake / "components" / "chart.vue").write_text(
        "x = `${this.getCdn()}/charts@1.2.3/dist/charts.js`\n"
        "y = `${this.getCdn()}/dyn@3.0.0/dist/${runtimeName}.js`\n"
    )
    monkeypatch.setattr(assets, "solara_dir", lambda: fake)  # and no page template there
    warnings: list[str] = []

    found = {
        a.key: a for a in assets.discover_assets(("page", "solaraviz", "extra"), warnings.append)
    }

    assert found["@widgetti/grid@9.8.7"].files == ["dist/grid.umd.js"]
    assert found["@widgetti/grid@9.8.7"].group == "solaraviz"
    assert found["charts@1.2.3"].group == "extra"
    assert found["dyn@3.0.0"].files == []  # file name only known at run time: package only
    page = [a for a in found.values() if a.group == "page"]
    assert page and all(a.source == "fallback" for a in page)
    assert any("page template" in w for w in warnings)


# ---------------------------------------------------------------- the real cache, served offline

WALK_APP = '''
"""A tiny Mesa model in SolaraViz: matplotlib space and plot (badia's app draws with matplotlib;
altair charts are left out: altair 6 emits Vega-Lite 6 specs that solara's vega-lite@5 front end
sometimes fails on, 'Cannot read properties of undefined (reading usermeta)')."""
import mesa
from mesa.discrete_space import CellAgent, OrthogonalMooreGrid
from mesa.visualization import SolaraViz, SpaceRenderer, make_plot_component
from mesa.visualization.components import AgentPortrayalStyle


class Walker(CellAgent):
    def __init__(self, model, cell):
        super().__init__(model)
        self.cell = cell

    def step(self):
        self.cell = self.cell.neighborhood.select_random_cell()
        self.model.distance += 1


class Walk(mesa.Model):
    def __init__(self, n=5, width=8, height=8, rng=1):
        super().__init__(rng=rng)
        self.distance = 0
        self.grid = OrthogonalMooreGrid((width, height), torus=True, random=self.random)
        Walker.create_agents(self, n, cell=self.random.choices(self.grid.all_cells.cells, k=n))
        self.datacollector = mesa.DataCollector(model_reporters={"Distance": "distance"})
        self.datacollector.collect(self)

    def step(self):
        self.agents.shuffle_do("step")
        self.datacollector.collect(self)


model = Walk()
renderer = SpaceRenderer(model, backend="matplotlib").setup_agents(
    lambda agent: AgentPortrayalStyle(color="tab:red", size=60)
)
renderer.render()
page = SolaraViz(
    model,
    renderer,
    components=[make_plot_component("Distance")],
    name="Walk",
)
'''


def test_missing_chromium_fails_the_test_instead_of_skipping(tmp_path, monkeypatch):
    import browser

    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        browser.require_chromium()


@pytest.fixture(scope="module")
def walk_app_url(tmp_path_factory):
    """The tiny SolaraViz app served by ``solara run --production`` on a free local port."""
    missing = assets.missing_files(assets.discover_assets(), assets.cache_dir())
    if missing:
        pytest.fail(f"solara asset cache incomplete (run `python -m sim.app.assets`): {missing}")
    app = tmp_path_factory.mktemp("walk") / "app.py"
    app.write_text(WALK_APP)
    with serve(solara_command(app), cwd=app.parent) as url:
        yield url


def test_asset_cache_holds_every_file_the_installed_solara_requests():
    wanted = assets.discover_assets()
    keys = {a.key for a in wanted}
    # the page itself (whichever Vue generation the installed ipyvue needs), and SolaraViz's layout
    assert any(k.startswith("@widgetti/solara-vuetify") for k in keys)
    assert any(k.startswith("@widgetti/vue-grid-layout@") for k in keys)
    assert all(a.source == "discovered" for a in wanted)
    missing = assets.missing_files(wanted, assets.cache_dir())
    assert missing == [], f"run `python -m sim.app.assets` (make test does): missing {missing}"


def test_solara_server_serves_every_asset_from_the_cache(walk_app_url):
    cache = assets.cache_dir()
    for asset in assets.discover_assets():
        for path in asset.url_paths():
            with urllib.request.urlopen(f"{walk_app_url}/_solara/cdn/{path}", timeout=30) as resp:
                assert resp.status == 200, path
                assert resp.read() == (cache / path).read_bytes(), path


@pytest.mark.browser
def test_solaraviz_renders_and_steps_with_no_internet(walk_app_url, offline_page, tmp_path):
    page = offline_page
    cdn_requests: list[str] = []
    page.on("request", lambda r: cdn_requests.append(r.url) if "/_solara/cdn/" in r.url else None)

    page.goto(walk_app_url)
    step = page.get_by_role("button", name="Step")
    step.wait_for(timeout=90_000)
    page.get_by_text("Time: 0.0").wait_for(timeout=30_000)
    images = page.locator("img.widget-image")  # the matplotlib space and plot
    images.nth(1).wait_for(timeout=60_000)
    sizes = images.evaluate_all("els => els.map(e => [e.naturalWidth, e.naturalHeight])")
    assert len(sizes) >= 2 and all(w > 100 and h > 100 for w, h in sizes), sizes
    space_before = images.first.screenshot()

    step.click()
    page.get_by_text("Time: 1.0").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelectorAll('img.widget-image').length >= 2", timeout=30_000
    )
    page.wait_for_timeout(500)  # let the re-rendered image decode
    page.screenshot(path=str(tmp_path / "solaraviz.png"), full_page=True)

    assert images.first.screenshot() != space_before, "the space image did not change after Step"
    assert page.blocked == [], "the page tried to reach the internet"
    assert page.failed == [] and page.errors == []
    served = {a.key for a in assets.discover_assets()}
    requested = {u.split("/_solara/cdn/", 1)[1].split("?")[0] for u in cdn_requests}
    not_discovered = {u for u in requested if not any(u.startswith(k + "/") for k in served)}
    assert requested and not not_discovered, f"requested but not discovered: {not_discovered}"
