"""The `badia` command line: validate, map, run, batch, calibrate, report, viz, schema.

Each subcommand is a thin wrapper over one domain module. Expected user errors (a bad scenario,
a missing file, a corrupt results folder) print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from sim import __version__
from sim.errors import UserError


def _cmd_validate(args: argparse.Namespace) -> int:
    from sim.scenario.loading import main_validate

    return main_validate(args.files, overrides=args.set)


def _cmd_map(args: argparse.Namespace) -> int:
    from sim.analysis.maps import render_map
    from sim.scenario.loading import load_scenario
    from sim.world.cache import build_terrain

    scenario = load_scenario(args.file, overrides=args.set)
    terrain = build_terrain(scenario.map, source=str(args.file))
    out = Path(args.output or Path(args.file).with_suffix(".png").name)
    out.parent.mkdir(parents=True, exist_ok=True)
    render_map(terrain, out, title=scenario.name)
    print(f"wrote {out}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from sim.analysis.run_report import run_command

    return run_command(args)


#: `badia schema KIND`: (module, model class, what the files are) of each file format.
_SCHEMAS = {
    "scenario": ("sim.scenario.schema", "Scenario", "a badia scenario file (scenarios/*.yaml)"),
    "experiment": ("sim.experiments.design", "Experiment",
                   "a badia experiment file (experiments/*.yaml, `badia batch`)"),
    "calibration": ("sim.experiments.calibration_spec", "CalibrationSpec",
                    "a badia calibration file (`badia calibrate`)"),
}


def _cmd_schema(args: argparse.Namespace) -> int:
    from sim.scenario.jsonschema import schema_text

    module, name, title = _SCHEMAS[args.kind]
    model = getattr(importlib.import_module(module), name)
    shorthands = {}
    if args.kind == "experiment":
        from sim.experiments.design import DESIGN_KINDS

        # `design: full_factorial` is short for `design: {kind: full_factorial}`
        shorthands[("design",)] = {"type": "string", "enum": list(DESIGN_KINDS)}
    sys.stdout.write(schema_text(model, title=title, kind=args.kind, shorthands=shorthands))
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from sim.experiments.batch import run_batch_command

    return run_batch_command(args)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from sim.analysis.calibration_report import run_calibrate_command

    return run_calibrate_command(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from sim.analysis.report import run_report_command

    return run_report_command(args)


def _cmd_viz(args: argparse.Namespace) -> int:
    from sim.app.serve import run_viz_command

    return run_viz_command(args)


_SUBCOMMANDS = {"batch": _cmd_batch, "calibrate": _cmd_calibrate, "report": _cmd_report,
                "viz": _cmd_viz}


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a scenario field, e.g. units[0].strength=40 or map.cell_km=2 (repeatable)",
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser for all subcommands.

    The batch, report and viz modules (pandas, scipy, matplotlib, dask) are imported only to
    parse their own subcommand's arguments (``command``; all of them when None), so that
    `badia validate` or `badia run` do not pay for them at start-up."""
    parser = argparse.ArgumentParser(
        prog="badia",
        description="Insurgent groups against garrison coverage in a desert theatre (Mesa ABM).",
    )
    parser.add_argument("--version", action="version", version=f"badia {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="validate scenario files (one line per error)")
    p.add_argument("files", nargs="+", type=Path)
    _add_set(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("map", help="render a scenario's terrain map to PNG")
    p.add_argument("file", type=Path)
    p.add_argument("-o", "--output", type=Path, help="output PNG (default: <scenario>.png)")
    _add_set(p)
    p.set_defaults(func=_cmd_map)

    p = sub.add_parser("run", help="run one scenario and write its metrics, events and map")
    p.add_argument("scenario", type=Path)
    p.add_argument("--days", type=float,
                   help="simulated days, a whole number >= 1 (default: the scenario's)")
    p.add_argument("--seed", type=int, help="random seed >= 0 (default: the scenario's)")
    p.add_argument("--out", type=Path, help="output folder (default: out/<scenario name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--track-every-hours", type=int, default=1, metavar="H",
                   help="record every unit's position every H hours for `badia viz --replay` "
                        "(tracks.parquet, knowledge.parquet; default 1, 0: none)")
    p.add_argument("--no-map", action="store_true",
                   help="do not draw map.png (drawing it takes longer than a short run)")
    p.add_argument("--gis", action="store_true",
                   help="also write OUT/gis/: events as GeoParquet, the terrain's layers as "
                        "GeoTIFFs, places as GeoJSON (needs the 'gis' extra)")
    _add_set(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("schema", help="print the JSON Schema of scenario, experiment or "
                                      "calibration files (for editors)")
    p.add_argument("kind", nargs="?", default="scenario", choices=list(_SCHEMAS),
                   help="which file format (default: scenario)")
    p.set_defaults(func=_cmd_schema)

    # the other subcommands live with their domain module: (name, module, help)
    for name, module, text in (
        ("batch", "sim.experiments.batch",
         "run an experiment (design x replicates) into a results folder"),
        ("calibrate", "sim.analysis.calibration_report",
         "fit scenario parameters to observed counts (ABC-SMC) and report"),
        ("report", "sim.analysis.report", "write an HTML report of a results folder"),
        ("viz", "sim.app.serve", "watch a scenario in the browser (Mesa SolaraViz)"),
    ):
        p = sub.add_parser(name, help=text)
        if command in (None, name):
            mod = importlib.import_module(module)
            getattr(mod, f"add_{name}_arguments")(p)
        p.set_defaults(func=_SUBCOMMANDS[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `badia` console script."""
    from sim.errors import ScenarioError

    words = sys.argv[1:] if argv is None else list(argv)
    command = next((w for w in words if not w.startswith("-")), "")
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ScenarioError as exc:
        for line in exc.messages:
            print(line, file=sys.stderr)
        return 1
    except UserError as exc:
        print(f"badia {args.command}: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"badia {args.command}: {exc.filename}: file not found", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"badia {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
