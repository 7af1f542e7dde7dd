"""Paired statistics over seeds: the mean difference with a t interval, a paired t-test, Holm's
correction, and interpolation along metric-vs-FLOPs curves (accuracy, or a loss where lower
is better).

With 3 to 5 seeds the paired t-test is the usable test: Wilcoxon's signed-rank test cannot
reach p < 0.05 below 6 pairs (its smallest two-sided p with 5 pairs is 0.0625), and a bootstrap
over 3 seeds has only 10 distinct resamples. The t-test assumes the per-seed differences are
roughly normal; that is the price of answering at all with so few seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
CONFIDENCE = 0.95
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"


@dataclass(frozen=True)
class Paired:
    """Mean of paired differences, its 95% t interval and the two-sided paired t-test p-value
    (interval and p are None with fewer than 2 pairs)."""

    n: int
    mean: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def paired(deltas: Sequence[float]) -> Paired | None:
    """Statistics of per-seed differences (strategy − baseline); None when there are none."""
    values = np.asarray([float(d) for d in deltas if math.isfinite(d)], dtype=float)
    n = len(values)
    if n == 0:
        return None
    mean = float(values.mean())
    if n < 2:
        return Paired(n, mean, None, None, None)
    if np.ptp(values) <= 1e-12 * max(1.0, abs(mean)):
        # Every seed moved by the same amount: no spread, so the difference is exact (t = ±inf).
        return Paired(n, mean, mean, mean, 1.0 if mean == 0 else 0.0)
    result = stats.ttest_1samp(values, 0.0)
    interval = result.confidence_interval(CONFIDENCE)
    return Paired(n, mean, float(interval.low), float(interval.high), float(result.pvalue))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (None stays None and is not counted in the family)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def verdict(
    result: Paired | None,
    p_adjusted: float | None,
    alpha: float = ALPHA,
    higher_is_better: bool = True,
) -> str:
    """Better, worse or no detectable difference; a difference (run − baseline) is better when
    positive for a metric where higher is better (accuracy), negative where lower is (a loss)."""
    if result is None:
        return "no pairs"
    if result.n < 2 or p_adjusted is None:
        return f"n too small (n={result.n})"
    if p_adjusted < alpha:
        return BETTER if (result.mean > 0) == higher_is_better else WORSE
    return NO_DIFFERENCE


Curve = Sequence[tuple[float, float]]  # (cumulative training FLOPs, metric), FLOPs ascending


def acc_within_budget(curve: Curve, budget: float) -> float | None:
    """Accuracy at `budget` FLOPs, linear between stage ends; a run that ended before the
    budget keeps its final accuracy; None when the budget ends before the first stage."""
    if not curve or budget < curve[0][0]:
        return None
    flops = [f for f, _ in curve]
    accs = [a for _, a in curve]
    return float(np.interp(min(budget, flops[-1]), flops, accs))


def flops_to_reach(curve: Curve, target: float, higher_is_better: bool = True) -> float | None:
    """FLOPs at which the curve first reaches `target` (at or above it for accuracy, at or
    below it for a loss), linear between stage ends (the first stage's end when it already
    reaches it); None when it never does."""
    previous: tuple[float, float] | None = None
    for flops, acc in curve:
        if (acc >= target) if higher_is_better else (acc <= target):
            if previous is None or acc == previous[1]:
                return float(flops)
            f0, a0 = previous
            return float(f0 + (target - a0) / (acc - a0) * (flops - f0))
        previous = (flops, acc)
    return None
