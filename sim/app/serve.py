"""`badia viz`: watch a scenario unfold in the browser (Mesa SolaraViz, served by solara).

Run ``badia viz [SCENARIO] [--port 8765] [--host 127.0.0.1]``, or ``solara run sim/app/serve.py``
(the scenario then comes from ``$BADIA_VIZ_SCENARIO``, else the default scenario). The page itself
(map, plots, controls) is :func:`sim.app.page.Page`; ``page`` is loaded from there on first use, so
that importing this module (the ``badia`` command line does, for its arguments) stays cheap.

The browser front end is served from solara's local asset cache (``make assets``): nothing is
fetched from the internet at run time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: The file ``solara run`` serves: this one (its ``page`` is :func:`sim.app.page.Page`).
APP_FILE = Path(__file__).resolve()
ENV_SCENARIO = "BADIA_VIZ_SCENARIO"  # the same name as sim.app.scenarios.ENV_SCENARIO
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def __getattr__(name: str) -> Any:
    # `page` (what `solara run` serves) is built on first access: PEP 562 module __getattr__,
    # which also serves the module object `solara run sim/app/serve.py` executes this file into.
    if name in ("page", "Page"):
        from sim.app.page import Page

        return Page
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def add_viz_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``badia viz``."""
    parser.add_argument("scenario", nargs="?", type=Path,
                        help="scenario file to open (default: scenarios/outpost_night_raid.yaml)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to serve on (default: {DEFAULT_PORT})")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to bind (default: {DEFAULT_HOST}, this machine only)")


def viz_command(scenario: Path | None, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The ``solara run`` command line and environment that serve the app."""
    cmd = [sys.executable, "-m", "solara", "run", str(APP_FILE), "--host", host,
           "--port", str(port), "--production", "--no-open"]  # fmt: skip
    env = dict(os.environ)
    env.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    env.setdefault("MPLBACKEND", "Agg")
    if scenario is not None:
        env[ENV_SCENARIO] = str(Path(scenario).resolve())
    else:
        env.pop(ENV_SCENARIO, None)
    return cmd, env


def run_viz_command(args: argparse.Namespace) -> int:
    """``badia viz``: check the scenario, then serve the app until interrupted."""
    from sim.errors import UserError

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: not a port number (1-65535)")
    scenario = args.scenario
    if scenario is not None:
        from sim.scenario.loading import load_scenario

        load_scenario(scenario)  # a bad file fails here, with one line per problem
    cmd, env = viz_command(scenario, args.host, args.port)
    shown = "localhost" if args.host in ("0.0.0.0", "::") else args.host
    print(f"badia viz: serving on http://{shown}:{args.port}  (Ctrl-C stops)", flush=True)
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
