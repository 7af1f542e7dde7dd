"""The report's growth-trigger sections as tables (growlab.report.trigger_compare makes the
rows): each trigger against the best fixed schedule at equal training FLOPs, and where and when
each trigger grew. A sweep without a trigger other than the fixed schedule has neither."""

from __future__ import annotations

from typing import Any

from growlab.report.aggregate import Sweep
from growlab.report.collect import TRIGGER_NAME
from growlab.report.comparison_tables import cell, delta_ci, p_cell
from growlab.report.formats import num
from growlab.report.tables import Table
from growlab.report.trigger_compare import growth_rows, trigger_fields, trigger_rows


def trigger_table(sweep: Sweep, pair_on: list[str] | None = None) -> Table:
    metric, names = sweep.metric, trigger_fields(sweep.metric)
    dims = sweep.line_dims
    label = metric.label
    headers = [
        *_trigger(sweep, {"trigger": "trigger"}), "max depth", "fixed schedules",
        "best fixed schedule",
        f"its mean {label}", "n",
        "FLOPs / fixed's", label, "fixed at trigger's FLOPs", f"Δ {label}", "95% CI (t)",
        "p (paired t)", "p (Holm)", "verdict",
    ]  # fmt: skip
    records = trigger_rows(sweep, pair_on)
    rows = [
        [
            *(str(r[d]) for d in dims),
            *_trigger(sweep, r),
            _size(r["max_depth"]),
            str(r["fixed_schedules"]),
            _best(r),
            cell(r[names["best_mean"]]),
            str(r["n"]),
            cell(r["flops_ratio"], 3),
            cell(r[metric.key]),
            cell(r[names["fixed_at"]]),
            *delta_ci(r),
            p_cell(r["p_value"]),
            p_cell(r["p_holm"]),
            r["verdict"],
        ]
        for r in records
    ]
    unpaired = sum(r["unpaired_runs"] for r in records)
    early = sum(r["ended_before_fixed"] for r in records)
    shared = "seed" if pair_on is None else ", ".join(pair_on)
    note = (
        "Each trigger against the best fixed schedule of its context (the same line but for "
        "trigger.* and train.epochs_per_stage; a fixed schedule is such a line at one final "
        f"depth; best: the best mean final {metric.label} over its seeds, {metric.way} is "
        f"better). Per {shared}: the trigger run's final {metric.label} minus the fixed run's "
        "at the trigger run's own final cumulative training FLOPs (interpolated linearly between "
        f"stage ends; a fixed run that ended earlier keeps its final value), so {metric.direction}"
        ". FLOPs / fixed's: the trigger run's final FLOPs over the fixed run's. Mean over seeds, "
        "95% t interval, two-sided paired t-test, Holm's correction over this table's rows; a "
        "verdict needs Holm p < 0.05 and n ≥ 2. Where the trigger's runs ended before the best "
        "schedule's first stage did (no equal-FLOPs point on it), the best schedule that reaches "
        "their FLOPs stands in, named after 'against'."
        + (f" {unpaired} trigger run(s) had no fixed partner and are left out" if unpaired else "")
        + (f" ({early} of them ended before the fixed run's first stage)." if early else "")
        + ("." if unpaired and not early else "")
    )
    title = "Growth triggers against the best fixed schedule at equal training FLOPs"
    return Table(title, [*dims, *headers], rows, note, "triggers", records=records)


def _best(record: dict[str, Any]) -> str:
    """The best fixed schedule, and the one the trigger is set against where that differs."""
    best, paired = record["best_fixed"], record["paired_fixed"]
    if best is None:
        return "none"
    return best if paired == best else f"{best} (against {paired})"


def _trigger(sweep: Sweep, record: dict[str, Any]) -> list[str]:
    """The trigger's own column, where the line's dimensions do not name it already."""
    return [] if TRIGGER_NAME in sweep.line_dims else [record["trigger"]]


def _size(value: Any) -> str:
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else num(float(value), 1)


def growth_table(sweep: Sweep) -> Table:
    dims = sweep.line_dims
    headers = [
        *_trigger(sweep, {"trigger": "trigger"}), "max depth", "grew", "n", "final size (min–max)",
        "growths",
        "first growth at FLOPs",
        "never grew", "stopped early", "signal FLOPs share (mean, max)",
    ]  # fmt: skip
    records = growth_rows(sweep)
    rows = []
    for r in records:
        reasons = f" ({'; '.join(r['stop_reasons'])})" if r["stop_reasons"] else ""
        share = (
            "—"
            if r["signal_share_mean"] is None
            else f"{r['signal_share_mean']:.2%}, {r['signal_share_max']:.2%}"
        )
        rows.append(
            [
                *(str(r[d]) for d in dims),
                *_trigger(sweep, r),
                _size(r["max_depth"]),
                r["axis"],
                str(r["n"]),
                f"{_size(r['final_size_mean'])} ({_size(r['final_size_min'])}–"
                f"{_size(r['final_size_max'])})",
                cell(r["growths_mean"], 2),
                cell(r["first_growth_flops_mean"], 3),
                f"{r['never_grew']}/{r['n']}",
                f"{r['stopped_early']}/{r['n']}{reasons}",
                share,
            ]
        )
    note = (
        "Per trigger, over its runs: what it grew (depth, or width where only the width "
        "changed), the final size (mean and range over seeds), the number of growths, the "
        "cumulative training FLOPs of the first growth (mean over the runs that grew), the runs "
        "that never grew and those that stopped growing early (and why), and the share of the "
        "run's training FLOPs the trigger's signal cost (its stages' signal_flops). The plot "
        "growth.png shows each run's size against FLOPs."
    )
    title = "Where and when each trigger grew"
    return Table(title, [*dims, *headers], rows, note, "trigger_growth", records=records)
