"""Fill solara's CDN cache from the npm registry, so SolaraViz works with no internet.

solara-server serves the browser front end through ``/_solara/cdn/<package>@<version>/<file>``:
it reads ``<proxy_cache_dir>/<package>@<version>/<file>`` and, when that file is missing, fetches it
from cdn.jsdelivr.net. On a closed network that fetch fails and the page stays blank. jsdelivr's
``/npm/`` tree is the npm package tarball unpacked, so unpacking ``npm pack <package>@<version>``
into the same folder gives solara exactly the files it would have fetched.

The assets are not hard-coded: they are read from the installed solara (its page template and the
Vue components that load libraries at run time), so an upgrade of solara is followed automatically.
A fallback list, for solara 1.64, is used only when discovery finds nothing.

Run ``python -m sim.app.assets`` (idempotent), ``--check`` to only report, ``--list`` to print the
URL paths, ``--all`` to include libraries SolaraViz never loads (echarts, codemirror, milkdown).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import AssetError

#: Asset groups. ``page``: the page template (every solara page); ``solaraviz``: libraries that
#: components used by Mesa's SolaraViz load on demand; ``extra``: every other on-demand library.
DEFAULT_GROUPS = ("page", "solaraviz")

# Which source file's libraries SolaraViz needs: GridDraggable (the component layout), FigureAltair
# (the default space and altair plots) and Markdown (the command console, info text).
_SOLARAVIZ_SOURCES = {
    "widgets/vue/gridlayout.vue",
    "widgets/vue/gridlayout_v3.vue",
    "widgets/vue/vegalite.vue",
    "components/markdown.py",
}

# `${this.getCdn()}/<package>@<version>[/<file>]`, the version possibly a `${variable}`.
_VUE_CDN_RE = re.compile(
    r"\$\{this\.getCdn\(\)\}/(?P<name>(?:@[\w.-]+/)?[\w.-]+)@(?P<ver>\$\{\w+\}|[\w.^~-]+)"
    r"(?P<path>/[^`'\"\s]*)?"
)
_JS_CONST_RE = re.compile(r"\b(?:const|let|var)\s+(\w+)\s*=\s*[\"']([^\"']+)[\"']")
_TEMPLATE_CDN = "@@CDN@@"
_TEMPLATE_CDN_RE = re.compile(re.escape(_TEMPLATE_CDN) + r"/(?P<url>[^\"'\s<>]+)")

# Used only if discovery finds nothing (what solara 1.64.1 with ipyvue 1 / ipywidgets 8 requests).
_FALLBACK = {
    "page": {
        "@widgetti/solara-vuetify-app@10.1.1": [
            "dist/main8.css",
            "dist/fonts.css",
            "dist/solara-vuetify-app8.min.js",
            "dist/solara-vuetify-app8.js",
        ],
        "font-awesome@4.5.0": ["css/font-awesome.min.css"],
        "requirejs@2.3.6": ["require.js"],
    },
    "solaraviz": {
        "@widgetti/vue-grid-layout@2.3.13-alpha.2": ["dist/vue-grid-layout.umd.js"],
        "requirejs@2.3.6": ["require.js", "require.min.js"],
        "vega@5": ["build/vega.min.js"],
        "vega-lite@5": ["build/vega-lite.min.js"],
        "vega-embed@6": ["build/vega-embed.min.js"],
        "katex@0.16.9": [
            "dist/katex.min.js",
            "dist/katex.min.css",
            "dist/contrib/auto-render.min.js",
        ],
        "mermaid@10.8.0": ["dist/mermaid.min.js"],
    },
}


@dataclass
class Asset:
    """One npm package as solara requests it, and the files of it that solara asks for."""

    name: str  # npm name, e.g. "@widgetti/solara-vuetify-app"
    spec: str  # version or range exactly as in the URL, e.g. "10.1.1" or "5"
    group: str  # "page" | "solaraviz" | "extra"
    files: list[str] = field(default_factory=list)  # paths inside the package, no leading "/"
    source: str = "discovered"  # or "fallback"

    @property
    def key(self) -> str:
        """``name@spec``: the npm package spec and the cache folder (relative) in one."""
        return f"{self.name}@{self.spec}"

    def url_paths(self) -> list[str]:
        """The paths the browser requests, relative to ``/_solara/cdn/``."""
        return [f"{self.key}/{f}" for f in self.files]


def _split_key(key: str) -> tuple[str, str]:
    name, _, spec = key.rpartition("@")
    return name, spec


def solara_dir() -> Path:
    """Directory of the installed ``solara`` package."""
    spec = importlib.util.find_spec("solara")
    if spec is None or not spec.submodule_search_locations:
        raise AssetError("solara is not installed in this Python environment")
    return Path(next(iter(spec.submodule_search_locations)))


def _major(dist: str) -> int:
    return int(importlib.metadata.version(dist).split(".")[0])


def cache_dir() -> Path:
    """The folder solara-server serves ``/_solara/cdn/`` from (honours SOLARA_ASSETS_* env)."""
    from solara.server import settings

    return Path(settings.assets.proxy_cache_dir)


def _template_urls() -> list[str]:
    """Render solara's page template as solara-server would, and collect its CDN URLs."""
    import jinja2
    from solara.server import settings

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(solara_dir() / "server" / "templates")),
        undefined=jinja2.ChainableUndefined,
    )
    # Template variables we do not supply render as null rather than failing the render.
    env.policies["json.dumps_function"] = lambda obj, **kw: json.dumps(
        obj, default=lambda o: None, **kw
    )
    template = env.get_template("solara.html.j2")

    def noop(*_args: object, **_kwargs: object) -> str:
        return ""

    resources = {
        "include_css": noop,
        "include_js": noop,
        "versioned_asset_url": noop,
        "module_urls": [],
        "nbextensions": [],
        "nbextensions_hashes": {},
        "theme": "light",
    }
    urls: set[str] = set()
    # The dev and production pages load different builds (.js vs .min.js): cache both.
    for production in (True, False):
        html = template.render(
            cdn=_TEMPLATE_CDN,
            assets=settings.assets.dict(),
            theme=settings.theme.dict(),
            resources=resources,
            production=production,
            ipywidget_major_version=_major("ipywidgets"),
            # solara-server's own rule (solara/server/server.py)
            vue3=importlib.metadata.version("ipyvue").startswith("3"),
        )
        urls.update(m.group("url") for m in _TEMPLATE_CDN_RE.finditer(html))
    return sorted(urls)


def _component_urls() -> list[tuple[str, str]]:
    """(source file, URL) for every library solara's Vue components load from the CDN."""
    root = solara_dir()
    found: list[tuple[str, str]] = []
    for path in sorted([*root.rglob("*.vue"), *root.rglob("*.py")]):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("website/", "test")):  # solara's own docs site and test helpers
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "getCdn()" not in text:
            continue
        consts = dict(_JS_CONST_RE.findall(text))

        def resolve(s: str, consts: dict[str, str] = consts) -> str:
            return re.sub(r"\$\{(\w+)\}", lambda v: consts.get(v.group(1), v.group(0)), s)

        for m in _VUE_CDN_RE.finditer(text):
            ver = resolve(m.group("ver"))
            if "${" in ver:
                continue  # a version we cannot resolve statically
            path = resolve(m.group("path") or "")
            if "${" in path:
                path = ""  # a file name computed at run time: fetch the package, check no file
            found.append((rel, f"{m.group('name')}@{ver}{path}"))
    return found


def _add(assets: dict[str, Asset], url: str, group: str, source: str) -> None:
    first, _, rest = url.partition("/")
    if first.startswith("@"):  # scoped package: "@scope/name@ver/file"
        second, _, rest = rest.partition("/")
        first = f"{first}/{second}"
    name, spec = _split_key(first)
    if not name or not spec:
        return
    asset = assets.get(first)
    if asset is None:
        asset = assets[first] = Asset(name, spec, group, source=source)
    elif group == "page":  # a package both groups use counts as part of the page
        asset.group = "page"
    if rest and rest not in asset.files:
        asset.files.append(rest)


def discover_assets(
    groups: Iterable[str] = DEFAULT_GROUPS, warn: Callable[[str], None] | None = None
) -> list[Asset]:
    """The packages (and their files) the installed solara requests, restricted to ``groups``."""
    groups = set(groups)
    assets: dict[str, Asset] = {}
    try:
        page_urls = _template_urls()
    except Exception as exc:  # a template solara changed beyond what we can render
        if warn:
            warn(f"could not render solara's page template ({exc}); using the fallback list")
        page_urls = []
    if not page_urls:
        page_urls = [f"{k}/{f}" for k, files in _FALLBACK["page"].items() for f in files]
        source = "fallback"
    else:
        source = "discovered"
    for url in page_urls:
        _add(assets, url, "page", source)

    components = _component_urls()
    if not any(rel in _SOLARAVIZ_SOURCES for rel, _ in components):
        if warn:
            warn("found no CDN libraries in solara's components; using the fallback list")
        for key, files in _FALLBACK["solaraviz"].items():
            for f in files:
                _add(assets, f"{key}/{f}", "solaraviz", "fallback")
    for rel, url in components:
        _add(assets, url, "solaraviz" if rel in _SOLARAVIZ_SOURCES else "extra", "discovered")
    return [a for a in assets.values() if a.group in groups]


def missing_files(assets: Iterable[Asset], cache: Path) -> list[str]:
    """URL paths (relative to the cache) of requested files that are not in ``cache``."""
    missing = []
    for asset in assets:
        paths = asset.url_paths() or [asset.key]
        missing.extend(p for p in paths if not (cache / p).exists())
    return missing


def _npm_pack(npm: str, specs: list[str], dest: Path) -> dict[str, Path]:
    """Download tarballs with ``npm pack``; returns {package name: tarball}."""
    cmd = [npm, "pack", "--json", "--prefer-offline", "--pack-destination", str(dest), *specs]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssetError(f"npm pack timed out after 600 s for {' '.join(specs)}") from exc
    if proc.returncode != 0:
        err = [ln for ln in proc.stderr.splitlines() if "ERR" in ln] or proc.stderr.splitlines()
        raise AssetError(f"npm pack {' '.join(specs)} failed: {' | '.join(err[-3:])}")
    try:
        packed = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssetError(f"npm pack printed no JSON: {proc.stdout[-200:]!r}") from exc
    return {entry["name"]: dest / entry["filename"] for entry in packed}


def _unpack(tarball: Path, target: Path) -> None:
    """Unpack an npm tarball into ``target``, dropping its top folder (usually ``package/``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = []
            for member in tar.getmembers():
                _, _, inner = member.name.partition("/")
                if not inner or not (member.isfile() or member.isdir()):
                    continue
                member.name = inner
                members.append(member)
            tar.extractall(staging, members=members, filter="data")
        if not target.exists():
            try:
                os.rename(staging, target)  # atomic: a folder is complete whenever it exists
                return
            except OSError:
                if not target.exists():
                    raise
        # A partial folder (e.g. files solara fetched itself while online): add what is missing.
        for src in sorted(staging.rglob("*")):
            dst = target / src.relative_to(staging)
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _add_minified_aliases(asset: Asset, cache: Path) -> None:
    """Provide requested ``x.min.js``/``x.min.css`` files the package does not ship.

    jsdelivr minifies such files on the fly from ``x.js``/``x.css`` (requirejs 2.3.6 ships only
    ``require.js`` yet solara's Markdown asks for ``require.min.js``); the unminified file is the
    same code, so a copy serves the same purpose.
    """
    root = cache / asset.key
    for rel in asset.files:
        dst = root / rel
        src = root / re.sub(r"\.min\.(js|css)$", r".\1", rel)
        if not dst.exists() and src != dst and src.is_file():
            shutil.copyfile(src, dst)


def ensure_assets(
    assets: list[Asset], cache: Path, npm: str = "npm", log: Callable[[str], None] = print
) -> list[Asset]:
    """Download and unpack every asset with a missing file; returns the ones fetched."""
    todo = [a for a in assets if missing_files([a], cache)]
    if not todo:
        return []
    npm_path = shutil.which(npm)
    if npm_path is None:
        raise AssetError(
            f"'{npm}' not found on PATH; install Node.js/npm (Debian: apt-get install -y npm)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="solara-assets-") as tmp:
        # One npm call per batch of distinct package names (npm reports tarballs by name).
        batches: list[list[Asset]] = []
        for asset in todo:
            batch = next((b for b in batches if all(x.name != asset.name for x in b)), None)
            if batch is None:
                batches.append([asset])
            else:
                batch.append(asset)
        for batch in batches:
            t0 = time.perf_counter()
            tarballs = _npm_pack(npm_path, [a.key for a in batch], Path(tmp))
            log(f"  npm pack: {len(batch)} package(s) in {time.perf_counter() - t0:.1f} s")
            for asset in batch:
                tarball = tarballs.get(asset.name)
                if tarball is None or not tarball.exists():
                    raise AssetError(f"npm pack did not produce a tarball for {asset.key}")
                _unpack(tarball, cache / asset.key)
                _add_minified_aliases(asset, cache)
    still = missing_files(todo, cache)
    if still:
        raise AssetError(f"npm packages lack files solara requests: {', '.join(still)}")
    return todo


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    """Command line: fill (default), ``--check`` or ``--list`` the solara asset cache."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.app.assets", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if incomplete")
    parser.add_argument("--list", action="store_true", help="print the /_solara/cdn/ URL paths")
    parser.add_argument("--all", action="store_true", help="also libraries SolaraViz never loads")
    parser.add_argument("--cache-dir", type=Path, help="default: solara's proxy_cache_dir")
    parser.add_argument("--npm", default="npm", help="npm executable (default: npm)")
    args = parser.parse_args(argv)

    def warn(msg: str) -> None:
        print(f"sim.app.assets: warning: {msg}", file=sys.stderr)

    try:
        groups = (*DEFAULT_GROUPS, "extra") if args.all else DEFAULT_GROUPS
        assets = discover_assets(groups, warn=warn)
        cache = args.cache_dir or cache_dir()
        if args.list:
            for asset in assets:
                for path in asset.url_paths():
                    print(f"/_solara/cdn/{path}")
            return 0
        print(
            f"solara assets: solara {importlib.metadata.version('solara')}, "
            f"ipyvue {importlib.metadata.version('ipyvue')}, "
            f"ipywidgets {importlib.metadata.version('ipywidgets')}; cache {cache}"
        )
        missing = set(missing_files(assets, cache))
        for asset in assets:
            state = "missing" if any(p in missing for p in asset.url_paths()) else "present"
            files = f"{len(asset.files)} file(s)"
            print(f"  {asset.group:9} {asset.key:42} {state:8} ({asset.source}) {files}")
        if args.check:
            for path in sorted(missing):
                print(f"  missing: {path}")
            return 1 if missing else 0
        t0 = time.perf_counter()
        fetched = ensure_assets(assets, cache, npm=args.npm)
        if fetched:
            size_mb = sum(_dir_size(cache / a.key) for a in fetched) / 1e6
            print(
                f"  fetched {len(fetched)} package(s), {size_mb:.1f} MB unpacked, "
                f"in {time.perf_counter() - t0:.1f} s"
            )
        else:
            print("  all present; nothing to fetch")
        return 0
    except AssetError as exc:
        print(f"sim.app.assets: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
