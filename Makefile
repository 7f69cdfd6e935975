# badia: two commands from a clean clone, `make demo` and `make test`.
# Every target first creates/refreshes .venv (scripts/ensure-venv: finds a Python >= 3.12 itself,
# reinstalls when pyproject.toml changes). Set PYTHON=/path/to/python3.12 to choose the interpreter.

VENV := .venv
PY := $(VENV)/bin/python
BADIA := $(VENV)/bin/badia
# Playwright must never download a browser: the browser tests drive Debian's /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
# Arguments for `make viz`, e.g. make viz VIZ_ARGS=scenarios/outpost_night_raid.yaml
VIZ_ARGS ?=

.PHONY: demo maps test lint bench viz venv assets constraints clean

## demo: the main job: the quick experiment (a scenario batch) and its report
demo: venv
	$(BADIA) batch experiments/quick.yaml --out results/quick
	$(BADIA) report results/quick --out results/quick/report
	@echo "report: $(CURDIR)/results/quick/report/index.html"
	@# the browser app's front end, so `badia viz` works offline afterwards (needs npm)
	@$(PY) -m sim.app.assets >/dev/null 2>&1 || echo "make demo: solara's browser assets not fetched (no npm?); badia viz will say what to run"

## maps: validate the bundled scenarios and draw their maps into out/maps/
maps: venv
	$(BADIA) validate scenarios/*.yaml
	mkdir -p out/maps
	for f in scenarios/*.yaml; do $(BADIA) map "$$f" -o "out/maps/$$(basename "$$f" .yaml).png" || exit 1; done

## test: the whole test suite on 2 workers, then ruff; fails if either fails
test: venv
	scripts/test-prereqs
	rc=0; $(PY) -m pytest -n 2 || rc=$$?; $(VENV)/bin/ruff check . || rc=$$?; exit $$rc

lint: venv
	$(VENV)/bin/ruff check .

## bench: run every benchmarks/*.py script (files starting with "_" are helpers)
bench: venv
	@set -e; found=0; for f in benchmarks/*.py; do case "$${f##*/}" in _*) continue;; esac; \
	  [ -e "$$f" ] || continue; found=1; echo "== $$f"; $(PY) "$$f"; done; \
	  [ $$found = 1 ] || { echo "make bench: no scripts in benchmarks/" >&2; exit 1; }

## viz: the SolaraViz browser app; solara's front end comes from the local cache (no internet)
viz: venv assets
	SOLARA_TELEMETRY_MIXPANEL_ENABLE=False $(BADIA) viz $(VIZ_ARGS)

venv:
	@scripts/ensure-venv

## constraints: rewrite constraints.txt (the versions ensure-venv installs) from .venv's pip
## freeze; deliberately only, after upgrading a dependency in .venv and a green `make test`
constraints: venv
	scripts/freeze-constraints

## assets: fill solara's offline CDN cache from npm (also done by `make test`)
assets: venv
	$(PY) -m sim.app.assets

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .badia-cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
