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
        if os.environ.get("BADIA_VIZ_REPLAY"):  # badia viz --replay RUN_DIR
            from sim.app.replay_page import Page
        else:
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
    parser.add_argument("--scenarios", type=Path, metavar="DIR",
                        help="a folder of scenario files the page's path field may open (besides "
                             "the bundled ones and the folder badia viz is started in)")
    parser.add_argument("--replay", type=Path, metavar="RUN_DIR",
                        help="replay a finished run instead: a `badia run` output folder, or a "
                             "batch results folder with --run ID (or RESULTS_DIR/ID)")
    parser.add_argument("--run", type=int, metavar="ID",
                        help="with --replay RESULTS_DIR: the batch run to replay (its run_id)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host other than loopback (the app has no login: anyone "
                             "who can reach the address can use it)")


def viz_command(scenario: Path | None, host: str, port: int, scenarios: Path | None = None
                ) -> tuple[list[str], dict[str, str]]:
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
    # what the page's path field may open (sim.app.scenarios.checked_scenario_path)
    env["BADIA_VIZ_ROOT"] = str(Path.cwd())
    if scenarios is not None:
        env["BADIA_VIZ_SCENARIOS"] = str(Path(scenarios).resolve())
    else:
        env.pop("BADIA_VIZ_SCENARIOS", None)
    return cmd, env


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_host(host: str, allow_remote: bool) -> str:
    """The host to bind, refused unless loopback or ``--allow-remote``; a warning on stderr
    when remote access is allowed."""
    from sim.errors import UserError

    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return host
    if not allow_remote:
        raise UserError(f"--host {host}: not a loopback address; the app has no login, so "
                        "anyone who reaches it can use it: add --allow-remote if you mean it")
    print(f"badia viz: WARNING: serving on {host}, reachable from other machines, with no login",
          file=sys.stderr)
    return host


def check_port_free(host: str, port: int) -> None:
    """One clear line if ``port`` is taken on ``host`` (instead of solara's traceback)."""
    import socket

    from sim.errors import UserError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(f"--port {port}: cannot serve on {host}:{port} ({exc.strerror}); "
                            "is another badia viz running? choose another --port") from None


def check_assets(fill: bool = True) -> None:
    """The browser front end must be in solara's asset cache, or the page stays blank with no
    internet: fill it from the npm registry when npm is there, else say what to run."""
    import shutil

    from sim.app import assets
    from sim.errors import AssetError, UserError

    wanted = assets.discover_assets(warn=lambda msg: None)
    cache = assets.cache_dir()
    if not assets.missing_files(wanted, cache):
        return
    npm = shutil.which("npm")
    if not fill or npm is None:
        raise UserError("solara's browser assets are missing (the page would be blank): run "
                        "`make assets` or `python -m sim.app.assets` (needs npm) first")
    print("badia viz: filling solara's asset cache from the npm registry (once)", flush=True)
    try:
        assets.ensure_assets(wanted, cache, npm=npm, log=lambda msg: None)
    except AssetError as exc:
        raise UserError(f"solara's browser assets could not be fetched: {exc}") from None
    if assets.missing_files(wanted, cache):
        raise UserError("solara's browser assets are still incomplete: run "
                        "`python -m sim.app.assets` to see what is missing")


def run_viz_command(args: argparse.Namespace) -> int:
    """``badia viz``: check the scenario, then serve the app until interrupted."""
    from sim.errors import UserError

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: not a port number (1-65535)")
    scenario = args.scenario
    replay = None
    if getattr(args, "replay", None) is not None or getattr(args, "run", None) is not None:
        from sim.app.replay import replay_folder

        # opened here, so a bad run folder is one line before anything is served
        replay = replay_folder(args.replay, args.run, scenario)
    elif scenario is not None:
        from sim.scenario.loading import load_scenario

        load_scenario(scenario)  # a bad file fails here, with one line per problem
    host = check_host(args.host, args.allow_remote)
    check_port_free(host, args.port)
    check_assets()
    scenarios = getattr(args, "scenarios", None)
    if scenarios is not None and not Path(scenarios).is_dir():
        raise UserError(f"--scenarios {scenarios}: not a folder")
    cmd, env = viz_command(scenario, host, args.port, scenarios)
    if replay is not None:
        env["BADIA_VIZ_REPLAY"] = str(replay.resolve())
    else:
        env.pop("BADIA_VIZ_REPLAY", None)
    shown = f"[{host}]" if ":" in host else host
    print(f"badia viz: serving on http://{shown}:{args.port}  (Ctrl-C stops)", flush=True)
    proc = subprocess.Popen(cmd, env=env)

    def stop(signum, frame):  # SIGTERM and SIGINT stop the whole server, solara included
        raise KeyboardInterrupt

    import signal

    signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 130
