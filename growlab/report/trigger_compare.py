"""Each growth trigger against the best fixed schedule at equal training FLOPs, seed by seed,
and where and when each trigger grew.

A *fixed schedule* is a line whose runs grew on the fixed schedule (no `trigger.name`, or
`fixed`) at one final depth; schedules differ by `train.epochs_per_stage`, depth and whatever
else the report already tells lines apart by. A *trigger* is a line whose runs name another
trigger, all its runs of one configured depth (the most it may grow to) together, whatever
depth each stopped at. A trigger is compared with the
fixed schedules of its context: the same line but for the schedule keys (`trigger.*`,
`train.epochs_per_stage`), so the same model, data set, strategy and any other swept key. The
best of them has the best mean final metric over its seeds (highest accuracy, lowest loss).
Per seed, the trigger run's final metric is set against the best schedule's run of that seed
at the trigger run's own final cumulative training FLOPs (interpolated linearly between that
run's stage ends; a run that ended earlier keeps its final value). A trigger run that ended
before the best schedule's first stage did has no equal-FLOPs point on it; then the best of
the schedules that reach every trigger run's FLOPs stands in (say, a shorter schedule), and the
row names it (`paired_fixed`); if none does, those runs are left out (`ended_before_fixed`).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Any

from growlab.report.aggregate import LineKey, Sweep
from growlab.report.baseline import curve
from growlab.report.collect import FIXED_TRIGGER, RunRecord, is_number, trigger_name
from growlab.report.growth_facts import (
    final_size,
    growth_axis,
    growth_flops,
    signal_share,
    stop_reason,
)
from growlab.report.metric import Metric
from growlab.report.pairing import interval_fields, mean_of
from growlab.report.select import value_of
from growlab.report.stats import acc_within_budget, holm, paired, verdict

SCHEDULE_KEYS = ("train.epochs_per_stage",)
SCHEDULE_PREFIX = "trigger."
NOT_PAIRING = ("depth", "strategy")  # --pair-on keys a trigger run and a schedule's never share


def is_schedule_dim(dim: str) -> bool:
    return dim in SCHEDULE_KEYS or dim.startswith(SCHEDULE_PREFIX)


def schedule_context(sweep: Sweep, key: LineKey) -> LineKey:
    """A line's key without its schedule dimensions."""
    return tuple(v for d, v in zip(sweep.line_dims, key, strict=True) if not is_schedule_dim(d))


def has_triggers(sweep: Sweep) -> bool:
    return any(trigger_name(r) != FIXED_TRIGGER for r in sweep.ok)


@dataclass
class Schedule:
    """A fixed schedule: a fixed-trigger line at one final depth, and its runs."""

    key: LineKey
    depth: int
    runs: list[RunRecord]
    mean: float


def fixed_schedules(sweep: Sweep) -> dict[LineKey, list[Schedule]]:
    """The fixed schedules by context."""
    out: dict[LineKey, list[Schedule]] = {}
    for (key, depth), runs in sorted(sweep.groups().items()):
        finals = [r.final for r in runs if r.final is not None]
        if trigger_name(runs[0]) == FIXED_TRIGGER and finals:
            schedule = Schedule(key, depth, runs, statistics.fmean(finals))
            out.setdefault(schedule_context(sweep, key), []).append(schedule)
    return out


def best_schedule(schedules: list[Schedule], metric: Metric) -> Schedule | None:
    """The schedule with the best mean final metric (the first of equals, in line order)."""
    best = None
    for schedule in schedules:
        if best is None or metric.better(schedule.mean, best.mean):
            best = schedule
    return best


def schedule_label(sweep: Sweep, schedule: Schedule) -> str:
    return f"{sweep.line_label(schedule.key)} depth {schedule.depth}"


TriggerKey = tuple[LineKey, int | None]  # a trigger line and the depth its runs were given


def config_depth(run: RunRecord) -> int | None:
    """The depth the run was configured with: a trigger's most (it may stop growing earlier)."""
    value = run.config.get("depth")
    return int(value) if is_number(value) else None


def trigger_lines(sweep: Sweep) -> dict[TriggerKey, list[RunRecord]]:
    """The runs of each trigger line and configured depth, whatever depth each one reached."""
    out: dict[TriggerKey, list[RunRecord]] = {}
    for key, runs in sweep.lines().items():
        for run in runs:
            if trigger_name(run) != FIXED_TRIGGER:
                out.setdefault((key, config_depth(run)), []).append(run)
    return out


def trigger_label(sweep: Sweep, key: TriggerKey) -> str:
    line, depth = key
    return sweep.line_label(line) + ("" if depth is None else f" up to depth {depth}")


def seed_key(run: RunRecord, pair_on: list[str] | None) -> str:
    """What a trigger run shares with its fixed-schedule partner: the seed (with --pair-on, its
    keys but depth, strategy and the schedule keys)."""
    keys = ["seed"] if pair_on is None else pair_on
    chosen = [k for k in keys if k not in NOT_PAIRING and not is_schedule_dim(k)]
    return json.dumps({k: value_of(run, k) for k in chosen}, sort_keys=True, default=str)


def trigger_fields(metric: Metric) -> dict[str, str]:
    """The rows' field names for a metric (acc: `fixed_acc_at_trigger_budget`, ...)."""
    return {
        "best_mean": f"best_fixed_{metric.key}",
        "fixed_at": f"fixed_{metric.short}_at_trigger_budget",
        "fixed_final": f"fixed_final_{metric.key}",
    }


@dataclass
class Pairs:
    """A trigger line's runs set against one fixed schedule's runs of the same seed."""

    own: list[float]
    fixed_at: list[float]
    fixed_final: list[float]
    ratios: list[float]
    early: int  # runs that ended before the schedule's first stage did: not comparable

    @property
    def deltas(self) -> list[float]:
        return [mine - at for mine, at in zip(self.own, self.fixed_at, strict=True)]


def pair_runs(
    runs: list[RunRecord], schedule: Schedule | None, metric: Metric, pair_on: list[str] | None
) -> Pairs:
    pairs = Pairs([], [], [], [], 0)
    partners = {seed_key(r, pair_on): r for r in schedule.runs} if schedule else {}
    for run in runs:
        partner = partners.get(seed_key(run, pair_on))
        mine = curve(run, metric)
        theirs = curve(partner, metric) if partner is not None else []
        if not mine or not theirs:
            continue
        at = acc_within_budget(theirs, mine[-1][0])
        if at is None:  # the trigger stopped before the schedule's first stage ended
            pairs.early += 1
            continue
        pairs.own.append(mine[-1][1])
        pairs.fixed_at.append(at)
        pairs.fixed_final.append(theirs[-1][1])
        pairs.ratios.append(mine[-1][0] / theirs[-1][0])
    return pairs


def partner_schedule(
    runs: list[RunRecord], candidates: list[Schedule], metric: Metric, pair_on: list[str] | None
) -> tuple[Schedule | None, Schedule | None, Pairs]:
    """The best fixed schedule, and the one the trigger's runs are set against: the best, or,
    when runs of the trigger ended before the best's first stage did (so no FLOPs are equal),
    the best of the schedules that reach every such run's FLOPs, if one does."""
    best = best_schedule(candidates, metric)
    pairs = pair_runs(runs, best, metric, pair_on)
    if not pairs.early:
        return best, best, pairs
    covering = {id(s): pair_runs(runs, s, metric, pair_on) for s in candidates}
    reaching = [s for s in candidates if covering[id(s)].own and not covering[id(s)].early]
    chosen = best_schedule(reaching, metric)
    if chosen is None:
        return best, best, pairs
    return best, chosen, covering[id(chosen)]


def trigger_rows(sweep: Sweep, pair_on: list[str] | None = None) -> list[dict[str, Any]]:
    """Per trigger line: the best fixed schedule of its context and, paired by seed, the
    trigger's final metric minus that schedule's at the trigger run's final FLOPs (mean, 95% t
    interval, paired t-test, Holm over the rows, verdict in the metric's direction). Where the
    trigger's runs end before the best schedule's first stage, the best schedule that reaches
    their FLOPs stands in for it (`paired_fixed`)."""
    metric, names = sweep.metric, trigger_fields(sweep.metric)
    schedules = fixed_schedules(sweep)
    rows, results = [], []
    for (key, most), runs in trigger_lines(sweep).items():
        candidates = schedules.get(schedule_context(sweep, key), [])
        best, paired_with, pairs = partner_schedule(runs, candidates, metric, pair_on)
        result = paired(pairs.deltas)
        results.append(result)
        rows.append(
            {
                **sweep.line_fields(key),
                "trigger": trigger_name(runs[0]),
                "max_depth": most,
                "fixed_schedules": len(candidates),
                "best_fixed": None if best is None else schedule_label(sweep, best),
                "best_fixed_depth": None if best is None else best.depth,
                names["best_mean"]: None if best is None else best.mean,
                "paired_fixed": None if paired_with is None else schedule_label(sweep, paired_with),
                "flops_ratio": mean_of(pairs.ratios),
                metric.key: mean_of(pairs.own),
                names["fixed_at"]: mean_of(pairs.fixed_at),
                names["fixed_final"]: mean_of(pairs.fixed_final),
                **interval_fields(result),
                "unpaired_runs": len(runs) - len(pairs.own),
                "ended_before_fixed": pairs.early,
            }
        )
    higher = metric.higher_is_better
    for row, result, p_holm in zip(rows, results, holm([r["p_value"] for r in rows]), strict=True):
        row["p_holm"] = p_holm
        row["verdict"] = verdict(result, p_holm, higher_is_better=higher)
    return rows


def growth_rows(sweep: Sweep) -> list[dict[str, Any]]:
    """Per trigger line: what it grew (depth or width), to what final size per seed, how many
    times and first at which FLOPs, how many runs stopped growing early and why, and the share
    of training FLOPs its signal cost."""
    rows = []
    for (key, most), runs in trigger_lines(sweep).items():
        axis = growth_axis(runs)
        per_run = [final_size(r, axis) for r in runs]  # in the order of `seeds`
        sizes = [s for s in per_run if s is not None]
        firsts = [g[0] for r in runs if (g := growth_flops(r, axis))]
        shares = [s for r in runs if (s := signal_share(r)) is not None]
        reasons = [reason for r in runs if (reason := stop_reason(r)) is not None]
        rows.append(
            {
                **sweep.line_fields(key),
                "trigger": trigger_name(runs[0]),
                "max_depth": most,
                "axis": axis,
                "n": len(runs),
                "seeds": [r.seed for r in runs],
                "final_sizes": per_run,
                "final_size_mean": mean_of(sizes),
                "final_size_min": min(sizes) if sizes else None,
                "final_size_max": max(sizes) if sizes else None,
                "growths_mean": mean_of([float(len(growth_flops(r, axis))) for r in runs]),
                "first_growth_flops_mean": mean_of(firsts),
                "never_grew": len(runs) - len(firsts),
                "stopped_early": len(reasons),
                "stop_reasons": sorted(set(reasons)),
                "signal_share_mean": mean_of(shares),
                "signal_share_max": max(shares) if shares else None,
            }
        )
    return rows
