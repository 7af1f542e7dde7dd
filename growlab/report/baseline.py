"""Each strategy against a baseline strategy (from-scratch by default), seed by seed.

A run is paired with the baseline run of the same seed and the same everything else the sweep
varies (depth, data, model, any swept config key that is not part of a strategy), so every
comparison is a per-seed difference and nothing is ever averaged across data sets or models.
Rows are plain dicts with named fields: report.json stores them as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from growlab.report.aggregate import LineKey, Sweep
from growlab.report.collect import RunRecord, is_number
from growlab.report.select import ReportInputError, value_of
from growlab.report.stats import Paired, acc_within_budget, flops_to_reach, holm, paired, verdict

DEFAULT_BASELINE = "from-scratch"


@dataclass
class Pair:
    run: RunRecord
    baseline: RunRecord


def shared_keys(sweep: Sweep) -> list[str]:
    """Swept config keys a run must share with its baseline partner: those that vary within a
    strategy. A key with one value per strategy (a learning rate tuned for each) is part of
    that strategy's recipe, like its `strategy.*` keys."""
    out = []
    for key in sweep.extra_keys:
        values: dict[str, set[str]] = {}
        for run in sweep.ok:
            values.setdefault(run.strategy, set()).add(json.dumps(run.config.get(key), default=str))
        if not key.startswith("strategy.") and any(len(v) > 1 for v in values.values()):
            out.append(key)
    return out


def pair_key(run: RunRecord, keys: list[str], pair_on: list[str] | None = None) -> str:
    """Everything a run shares with its baseline partner: all but the strategy's recipe, or,
    with `pair_on`, those keys (within the run's model and data set, never across them)."""
    if pair_on is not None:
        chosen = {k: value_of(run, k) for k in pair_on}
        return json.dumps([run.model, run.data, chosen], sort_keys=True, default=str)
    swept = {k: run.config.get(k) for k in keys}
    return json.dumps(
        [run.model, run.data, run.depth, run.seed, swept], sort_keys=True, default=str
    )


def pairing_keys(sweep: Sweep, pair_on: list[str] | None = None) -> list[str]:
    """The keys a pair shares, for the tables' notes."""
    if pair_on is not None:
        return ["model", "data", *pair_on]
    return ["model", "data", "depth", "seed", *shared_keys(sweep)]


def partners_of(
    sweep: Sweep, baseline: str, pair_on: list[str] | None = None
) -> dict[str, RunRecord]:
    """The baseline's runs by pair key; with `pair_on`, two baseline runs with one key are
    refused (which of them a run pairs with would be a guess)."""
    keys = shared_keys(sweep)
    partners: dict[str, RunRecord] = {}
    for run in sweep.ok:
        if run.strategy != baseline:
            continue
        key = pair_key(run, keys, pair_on)
        if pair_on is not None and key in partners:
            other = partners[key]
            differ = sorted(
                k
                for k in set(run.config) | set(other.config)
                if run.config.get(k) != other.config.get(k)
            )
            raise ReportInputError(
                f"--pair-on {','.join(pair_on)}: baseline runs {other.name} and {run.name} "
                f"would both pair with the same runs; add a key that tells them apart"
                + (f" (they differ in {', '.join(differ[:5])})" if differ else "")
            )
        partners[key] = run
    return partners


def line_fields(sweep: Sweep, key: LineKey) -> dict[str, Any]:
    return sweep.line_fields(key)


def context(sweep: Sweep, key: LineKey) -> LineKey:
    """A line's key without its strategy: the data set, model and swept keys it belongs to."""
    drop = sweep.line_dims.index("strategy")
    return key[:drop] + key[drop + 1 :]


def pairs_by_group(
    sweep: Sweep, baseline: str, pair_on: list[str] | None = None
) -> tuple[dict[tuple[LineKey, int], list[Pair]], dict[tuple[LineKey, int], int]]:
    """Per (line, depth) of every other strategy: its runs paired with the baseline's, and how
    many of its runs found no baseline partner."""
    keys = shared_keys(sweep)
    partners = partners_of(sweep, baseline, pair_on)
    pairs: dict[tuple[LineKey, int], list[Pair]] = {}
    unpaired: dict[tuple[LineKey, int], int] = {}
    for (key, depth), runs in sorted(sweep.groups().items()):
        if runs[0].strategy == baseline:
            continue
        found = [
            Pair(r, partners[k]) for r in runs if (k := pair_key(r, keys, pair_on)) in partners
        ]
        pairs[(key, depth)] = found
        unpaired[(key, depth)] = len(runs) - len(found)
    return pairs, unpaired


def has_baseline(sweep: Sweep, baseline: str) -> bool:
    return any(r.strategy == baseline for r in sweep.ok)


def _interval(result: Paired | None) -> dict[str, Any]:
    if result is None:
        return {"n": 0, "delta_mean": None, "ci_low": None, "ci_high": None, "p_value": None}
    return {
        "n": result.n,
        "delta_mean": result.mean,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
    }


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if is_number(v)]
    return sum(values) / len(values) if values else None


def verdict_rows(
    sweep: Sweep, baseline: str = DEFAULT_BASELINE, pair_on: list[str] | None = None
) -> list[dict[str, Any]]:
    """Per strategy × depth: paired Δ final test accuracy vs the baseline, its 95% t interval,
    the paired t-test p-value, Holm's adjustment over every row, and a verdict."""
    pairs, unpaired = pairs_by_group(sweep, baseline, pair_on)
    rows, results = [], []
    for (key, depth), found in pairs.items():
        deltas = [p.run.summary["test_acc"] - p.baseline.summary["test_acc"] for p in found]
        result = paired(deltas)
        results.append(result)
        rows.append(
            {
                **line_fields(sweep, key),
                "depth": depth,
                "test_acc": _mean([p.run.summary["test_acc"] for p in found]),
                "baseline_test_acc": _mean([p.baseline.summary["test_acc"] for p in found]),
                **_interval(result),
                "unpaired_runs": unpaired[(key, depth)],
            }
        )
    adjusted = holm([r["p_value"] for r in rows])
    for row, result, p_holm in zip(rows, results, adjusted, strict=True):
        row["p_holm"] = p_holm
        row["verdict"] = verdict(result, p_holm)
    return rows


def curve(run: RunRecord) -> list[tuple[float, float]]:
    """(cumulative training FLOPs, test accuracy) at the end of each stage."""
    points = [
        (float(s["cum_train_flops"]), float(s["test_acc"]))
        for s in run.stages
        if is_number(s.get("cum_train_flops")) and is_number(s.get("test_acc"))
    ]
    return sorted(points)


def budget(run: RunRecord) -> float | None:
    points = curve(run)
    return points[-1][0] if points else None


def compute_rows(
    sweep: Sweep, baseline: str = DEFAULT_BASELINE, pair_on: list[str] | None = None
) -> list[dict[str, Any]]:
    """Per strategy × depth, against the paired baseline run's final budget B and accuracy A:
    the accuracy reached within B FLOPs (Δ vs A with its interval), the FLOPs needed to reach
    A as a fraction of B (over the seeds that reach it), and the baseline's accuracy at the
    strategy's own final budget."""
    pairs, _ = pairs_by_group(sweep, baseline, pair_on)
    rows = []
    for (key, depth), found in pairs.items():
        deltas, accs, own, reach, finals, base_at_own = [], [], [], [], [], []
        reached = 0
        for pair in found:
            b_curve, s_curve = curve(pair.baseline), curve(pair.run)
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
            needed = flops_to_reach(s_curve, b_acc)
            if needed is not None:
                reached += 1
                reach.append(needed / b_flops)
        n = len(own)
        result = paired(deltas)
        rows.append(
            {
                **line_fields(sweep, key),
                "depth": depth,
                "flops_ratio": _mean(own),
                "acc_at_baseline_budget": _mean(accs),
                **{k: v for k, v in _interval(result).items() if k != "p_value"},
                "n": n,
                "reached_baseline_acc": reached,
                "flops_to_baseline_acc_ratio": _mean(reach) if reached else None,
                "final_test_acc": _mean(finals),
                "baseline_acc_at_own_budget": _mean(base_at_own),
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
                    **{k: v for k, v in _interval(result).items() if k != "p_value"},
                    "helped": sum(d < 0 for d in deltas),
                }
            )
    return rows
