"""Does a campaign run behave like the documented insurgency? Month-by-month figures of runs
and the checks the campaign-validity issue asks for.

``python -m sim.analysis.campaign SCENARIO [--seeds 10] [--workers 2]`` runs the scenario for
its length with seeds 1..N and prints, per seed, the insurgent-started attacks of each month and
the checks:

- attacks in every month of every seed (no collapse);
- mean attacks per month within the documented band (``ATTACKS_PER_MONTH_BAND``);
- pro-government killed per insurgent attack within ``KILLED_PER_ATTACK_BAND``;
- insurgent fighting strength at the end at least half of the start (recruitment included);
- at least one mine or IED strike and one attack on civilians per quarter, on average.

A scenario with ``campaign.measured_from`` is counted from that day: its months, and the start
of the strength ratio (the fighters alive at the end of the warm-up).

An attack on civilians is an insurgent attack (any attack kind, a mine strike included) in
which civilians were killed or wounded, or a ``prey`` attack.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from sim.engine.run import run_scenario
from sim.scenario.loading import load_scenario
from sim.scenario.vocab import ATTACK_TYPES, CAMPAIGN_ATTACK_TYPES

#: Documented band of attacks per month in central Syria, 2020 (Newlines: at least 286 in the
#: year, about 24 a month; CEP monthly reports: 18 in May to 35+ in August).
ATTACKS_PER_MONTH_BAND = (18.0, 35.0)
#: Pro-government killed per insurgent attack: the issue's band around 432 / 286 = 1.5.
KILLED_PER_ATTACK_BAND = (0.9, 2.2)
#: A quarter is three calendar months.
MONTHS_PER_QUARTER = 3


@dataclass
class CampaignRun:
    """One run's monthly figures."""

    seed: int
    months: pd.DataFrame  # index: (year, month); columns below
    strength_start: float     # fighters at the start of the measured period
    strength_end: float
    strength_initial: float   # the scenario's force, before any warm-up


def _civilian_attacks(events: list[dict], civilian_units: set[str], civilians: set[str]
                      ) -> list[dict]:
    """Insurgent attacks on civilians: an attack event (raid, ambush, fake checkpoint, prey ...:
    one per operation) on a civilian unit, or a mine strike that killed civilians."""
    kinds = set(ATTACK_TYPES) | set(CAMPAIGN_ATTACK_TYPES)
    out = []
    for e in events:
        if e["type"] == "mine_strike":
            if any(f in civilians and n > 0 for f, n in e.get("losses", {}).items()):
                out.append(e)
        elif e["type"] in kinds and e.get("target") in civilian_units:
            out.append(e)
    return out


def campaign_run(scenario, seed: int) -> CampaignRun:
    """Run ``scenario`` (a path or a loaded Scenario) with ``seed`` for its length."""
    res = run_scenario(scenario, seed=seed)
    spec = res.scenario
    civilians = {n for n, f in spec.factions.items() if f.role == "civilian"}
    insurgents = [n for n, f in spec.factions.items() if f.role == "insurgent"]
    government = [n for n, f in spec.factions.items() if f.role == "garrison"]
    daily = res.daily.copy()
    dates = [spec.start + timedelta(days=int(d) - 1) for d in daily["day"]]
    daily["period"] = [(d.year, d.month) for d in dates]
    cols = {"attacks": "attacks_attempted",
            "mine_strikes": "mine_strike_attempted"}
    months = pd.DataFrame(index=sorted(set(daily["period"])))
    for name, col in cols.items():
        months[name] = daily.groupby("period")[col].sum() if col in daily else 0.0
    killed = sum(daily.get(f"losses__{g}", 0.0) for g in government)
    months["government_killed"] = pd.Series(killed).groupby(daily["period"]).sum()
    civ = pd.Series(0.0, index=months.index)
    names = set()
    for u in spec.units:
        if u.faction in civilians:
            base = u.name or ""
            names |= {base} if u.count == 1 else {f"{base}-{k + 1}" for k in range(u.count)}
    for e in _civilian_attacks(res.events, names, civilians):
        d = spec.start + timedelta(hours=int(e["hour"]))
        if (d.year, d.month) in civ.index:
            civ[(d.year, d.month)] += 1
    months["civilian_attacks"] = civ
    alive = [f"fighters_alive__{i}" for i in insurgents]
    end = float(sum(res.daily[c].iloc[-1] for c in alive if c in res.daily))
    start = float(sum(u.count * (u.strength or 0) for u in spec.units
                      if spec.factions[u.faction].role == "insurgent"))
    initial = start
    first = spec.campaign.measured_from if spec.campaign else None
    if first is not None:
        # after a warm-up: the months from `measured_from`, and the strength at its dawn (the
        # fighters alive at the end of the last warm-up day)
        months = months[[(y, m) >= (first.year, first.month) for y, m in months.index]]
        warm_days = (first - spec.start.date()).days
        if warm_days > 0:
            row = daily[daily["day"] == warm_days]
            start = float(sum(row[c].iloc[0] for c in alive if c in row))
    return CampaignRun(seed, months, start, end, initial)


@dataclass
class CampaignCheck:
    """The issue's checks over a set of runs."""

    months_without_attacks: int
    attacks_per_month_mean: float
    killed_per_attack: float
    strength_end_over_start_min: float
    mine_strikes_per_quarter: float
    civilian_attacks_per_quarter: float

    def failures(self) -> list[str]:
        out = []
        if self.months_without_attacks:
            out.append(f"{self.months_without_attacks} month(s) without attacks")
        lo, hi = ATTACKS_PER_MONTH_BAND
        if not lo <= self.attacks_per_month_mean <= hi:
            out.append(f"attacks per month {self.attacks_per_month_mean:.1f} outside [{lo}, {hi}]")
        lo, hi = KILLED_PER_ATTACK_BAND
        if not lo <= self.killed_per_attack <= hi:
            out.append(f"killed per attack {self.killed_per_attack:.2f} outside [{lo}, {hi}]")
        if self.strength_end_over_start_min < 0.5:
            out.append(f"end strength {self.strength_end_over_start_min:.2f} of the start (< 0.5)")
        if self.mine_strikes_per_quarter < 1:
            out.append(f"mine strikes per quarter {self.mine_strikes_per_quarter:.2f} (< 1)")
        if self.civilian_attacks_per_quarter < 1:
            out.append(f"attacks on civilians per quarter {self.civilian_attacks_per_quarter:.2f}"
                       " (< 1)")
        return out


def check(runs: list[CampaignRun]) -> CampaignCheck:
    months = pd.concat([r.months for r in runs])
    quarters = len(months) / MONTHS_PER_QUARTER
    return CampaignCheck(
        months_without_attacks=int((months["attacks"] <= 0).sum()),
        attacks_per_month_mean=float(months["attacks"].mean()),
        killed_per_attack=float(months["government_killed"].sum()
                                / max(months["attacks"].sum(), 1.0)),
        strength_end_over_start_min=min(r.strength_end / r.strength_start for r in runs),
        mine_strikes_per_quarter=float(months["mine_strikes"].sum() / quarters),
        civilian_attacks_per_quarter=float(months["civilian_attacks"].sum() / quarters),
    )


def _run(args: tuple[str, int]) -> CampaignRun:
    return campaign_run(args[0], args[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.campaign", description=__doc__)
    p.add_argument("scenario")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    load_scenario(a.scenario)  # one-line errors before any worker starts
    tasks = [(a.scenario, s) for s in range(1, a.seeds + 1)]
    from sim.experiments.batch import local_executor

    with local_executor(a.workers) as pool:
        runs = list(pool.map(_run, tasks))
    table = pd.DataFrame({r.seed: r.months["attacks"].to_numpy() for r in runs},
                         index=[f"{y}-{m:02d}" for y, m in runs[0].months.index]).T
    print("insurgent-started attacks per month (rows: seeds)")
    print(table.astype(int).to_string())
    c = check(runs)
    print(f"\nmonths without attacks: {c.months_without_attacks}")
    print(f"attacks per month, mean: {c.attacks_per_month_mean:.1f} "
          f"(band {ATTACKS_PER_MONTH_BAND[0]:.0f}-{ATTACKS_PER_MONTH_BAND[1]:.0f})")
    print(f"pro-government killed per attack: {c.killed_per_attack:.2f} "
          f"(band {KILLED_PER_ATTACK_BAND[0]}-{KILLED_PER_ATTACK_BAND[1]})")
    print("insurgent strength at the end / start, per seed: "
          + ", ".join(f"{r.strength_end / r.strength_start:.2f}" for r in runs))
    if any(r.strength_initial != r.strength_start for r in runs):
        print("  (after the warm-up; the end over the scenario's initial force: "
              + ", ".join(f"{r.strength_end / r.strength_initial:.2f}" for r in runs) + ")")
    print(f"mine strikes per quarter: {c.mine_strikes_per_quarter:.1f}; "
          f"attacks on civilians per quarter: {c.civilian_attacks_per_quarter:.1f}")
    bad = c.failures()
    print("all checks pass" if not bad else "FAILS: " + "; ".join(bad))
    return 0 if not bad else 3


if __name__ == "__main__":
    sys.exit(main())
