"""Each strategy against a baseline strategy (from-scratch by default), seed by seed, by the
sweep's primary metric (test accuracy, or a loss where lower is better: growlab.report.metric).

Pairs come from growlab.report.pairing. Rows are plain dicts with named fields (named after the
metric: `test_acc`, `acc_at_baseline_budget`; `test_loss`, `loss_at_baseline_budget`), which
report.json stores as they are.
"""

from __future__ import annotations

from typing import Any

from growlab.report.aggregate import Sweep
from growlab.report.collect import RunRecord, is_number
from growlab.report.metric import ACCURACY, Metric
from growlab.report.pairing import (
    context,
    interval_fields,
    line_fields,
    mean_of,
    pairs_by_group,
)
from growlab.report.stats import acc_within_budget, flops_to_reach, holm, paired, verdict

DEFAULT_BASELINE = "from-scratch"
__all__ = ["DEFAULT_BASELINE", "compute_rows", "context", "stage_help_rows", "verdict_rows"]


def final(run: RunRecord) -> float:
    value = run.final
    assert value is not None  # a completed run has one (collect.load_run)
    return value


def verdict_rows(
    sweep: Sweep, baseline: str = DEFAULT_BASELINE, pair_on: list[str] | None = None
) -> list[dict[str, Any]]:
    """Per strategy × depth: paired Δ final metric vs the baseline, its 95% t interval, the
    paired t-test p-value, Holm's adjustment over every row, and a verdict (which sign is
    better follows the metric)."""
    key = sweep.metric.key
    pairs, unpaired = pairs_by_group(sweep, baseline, pair_on)
    rows, results = [], []
    for (line, depth), found in pairs.items():
        result = paired([final(p.run) - final(p.baseline) for p in found])
        results.append(result)
        rows.append(
            {
                **line_fields(sweep, line),
                "depth": depth,
                key: mean_of([final(p.run) for p in found]),
                f"baseline_{key}": mean_of([final(p.baseline) for p in found]),
                **interval_fields(result),
                "unpaired_runs": unpaired[(line, depth)],
            }
        )
    adjusted = holm([r["p_value"] for r in rows])
    higher = sweep.metric.higher_is_better
    for row, result, p_holm in zip(rows, results, adjusted, strict=True):
        row["p_holm"] = p_holm
        row["verdict"] = verdict(result, p_holm, higher_is_better=higher)
    return rows


def curve(run: RunRecord, metric: Metric = ACCURACY) -> list[tuple[float, float]]:
    """(cumulative training FLOPs, the metric) at the end of each stage."""
    points = [
        (float(s["cum_train_flops"]), float(s[metric.key]))
        for s in run.stages
        if is_number(s.get("cum_train_flops")) and is_number(s.get(metric.key))
    ]
    return sorted(points)


def compute_fields(metric: Metric) -> dict[str, str]:
    """The equal-compute rows' field names for a metric (acc: `acc_at_baseline_budget`, ...)."""
    short = metric.short
    return {
        "at_budget": f"{short}_at_baseline_budget",
        "reached": f"reached_baseline_{short}",
        "to_reach": f"flops_to_baseline_{short}_ratio",
        "final": f"final_{metric.key}",
        "base_at_own": f"baseline_{short}_at_own_budget",
    }


def compute_rows(
    sweep: Sweep, baseline: str = DEFAULT_BASELINE, pair_on: list[str] | None = None
) -> list[dict[str, Any]]:
    """Per strategy × depth, against the paired baseline run's final budget B and metric A:
    the metric reached within B FLOPs (Δ vs A with its interval), the FLOPs needed to reach A
    (accuracy at least A, a loss at most A) as a fraction of B (over the seeds that reach it),
    and the baseline's metric at the strategy's own final budget."""
    metric = sweep.metric
    names = compute_fields(metric)
    pairs, _ = pairs_by_group(sweep, baseline, pair_on)
    rows = []
    for (key, depth), found in pairs.items():
        deltas, accs, own, reach, finals, base_at_own = [], [], [], [], [], []
        reached = 0
        for pair in found:
            b_curve, s_curve = curve(pair.baseline, metric), curve(pair.run, metric)
            if not b_curve or not s_curve:
                continue
            b_flops, b_acc = b_curve[-1]
            acc = acc_within_budget(s_curve, b_flops)
            if acc is not None:
                accs.append(acc)
                deltas.append(acc - b_acc)
            own.append(s_curve[-1][0] / b_flops)
            at_own = acc_within_budget(b_curve, s_curve[-1][0])
            if at_own is not None:  # None: the run ended before the baseline's first stage
                finals.append(s_curve[-1][1])
                base_at_own.append(at_own)
            needed = flops_to_reach(s_curve, b_acc, metric.higher_is_better)
            if needed is not None:
                reached += 1
                reach.append(needed / b_flops)
        n = len(own)
        result = paired(deltas)
        rows.append(
            {
                **line_fields(sweep, key),
                "depth": depth,
                "flops_ratio": mean_of(own),
                names["at_budget"]: mean_of(accs),
                **{k: v for k, v in interval_fields(result).items() if k != "p_value"},
                "n": n,
                names["reached"]: reached,
                names["to_reach"]: mean_of(reach) if reached else None,
                names["final"]: mean_of(finals),
                names["base_at_own"]: mean_of(base_at_own),
            }
        )
    return rows


def stage_help_rows(sweep: Sweep) -> list[dict[str, Any]]:
    """Per line and stage index: the change of validation loss the stage brought (this stage's
    end − the previous stage's end; negative helped), mean and 95% t interval over seeds,
    from each line's deepest runs."""
    rows = []
    for key, runs in sweep.lines().items():
        deepest = max(r.depth or 0 for r in runs)
        per_stage: dict[int, list[float]] = {}
        phases: dict[int, str] = {}
        for run in (r for r in runs if (r.depth or 0) == deepest):
            stages = run.stages
            for before, after in zip(stages, stages[1:], strict=False):
                if is_number(before.get("val_loss")) and is_number(after.get("val_loss")):
                    index = int(after["stage"])
                    per_stage.setdefault(index, []).append(after["val_loss"] - before["val_loss"])
                    phases[index] = str(after.get("phase"))
        for index, deltas in sorted(per_stage.items()):
            result = paired(deltas)
            rows.append(
                {
                    **line_fields(sweep, key),
                    "depth": deepest,
                    "stage": index,
                    "phase": phases[index],
                    **{k: v for k, v in interval_fields(result).items() if k != "p_value"},
                    "helped": sum(d < 0 for d in deltas),
                }
            )
    return rows
