"""The equal-compute plot: the primary metric (accuracy, or a loss) against cumulative training
FLOPs per stage, with the baseline's final budget and metric drawn in, and where each strategy
stands against both."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from growlab.report.aggregate import Sweep, flops_curves  # noqa: E402
from growlab.report.baseline import compute_fields, compute_rows, context  # noqa: E402
from growlab.report.plots import _empty, styles  # noqa: E402

FILE = "equal_compute.png"


def equal_compute(sweep: Sweep, baseline: str, pair_on: list[str] | None = None) -> Figure:
    """One panel per final depth (and data set / model / swept key): mean curves over seeds,
    the baseline's budget B (vertical) and final metric A (horizontal); a star marks each
    strategy's metric within B, a triangle the FLOPs at which it reaches A."""
    style = styles(sweep)
    metric, names = sweep.metric, compute_fields(sweep.metric)
    rows = {(context(sweep, _key(sweep, r)), r["depth"], r["strategy"]): r for r in
            compute_rows(sweep, baseline, pair_on)}  # fmt: skip
    panels: dict[tuple[Any, int], dict[tuple[str, ...], Any]] = {}
    for depth, lines in flops_curves(sweep).items():
        for key, points in lines.items():
            panels.setdefault((context(sweep, key), depth), {})[key] = points
    n = max(1, len(panels))
    cols = min(n, 3)
    fig, axes = plt.subplots(
        math.ceil(n / cols), cols, figsize=(5.5 * cols, 4 * math.ceil(n / cols)), squeeze=False
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    if not panels:
        axes[0][0].set_visible(True)
        _empty(axes[0][0], "no completed runs")
    for ax, ((ctx, depth), lines) in zip(axes.flat, sorted(panels.items()), strict=False):
        base = next((pts for key, pts in lines.items() if _strategy(sweep, key) == baseline), None)
        if base is not None:
            ax.axvline(base[-1][0], color="grey", linestyle=":", label=f"{baseline} budget")
            ax.axhline(
                base[-1][1].mean, color="grey", linestyle="--", label=f"{baseline} {metric.short}"
            )
        for key, points in lines.items():
            ax.plot(
                [x for x, _ in points],
                [s.mean for _, s in points],
                **style[key],
                label=f"{_strategy(sweep, key)} (n={points[-1][1].n})",
            )
            row = rows.get((ctx, depth, _strategy(sweep, key)))
            if row is None or base is None:
                continue
            b_flops, color = base[-1][0], style[key]["color"]
            if row[names["at_budget"]] is not None:
                ax.plot([b_flops], [row[names["at_budget"]]], "*", color=color, ms=12)
            if row[names["to_reach"]] is not None:
                reach = row[names["to_reach"]] * b_flops
                ax.plot([reach], [base[-1][1].mean], "v", color=color, ms=9)
        ax.set_xscale("log")
        ax.set_xlabel("cumulative training FLOPs")
        ax.set_ylabel(f"{metric.axis} (mean over seeds)")
        ax.set_title(" ".join([*ctx, f"depth {depth}"]))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    noun = metric.noun
    fig.suptitle(
        f"At equal compute: ★ {noun} within {baseline}'s budget, ▼ FLOPs to reach its {noun}"
    )
    fig.tight_layout()
    return fig


def _strategy(sweep: Sweep, key: tuple[str, ...]) -> str:
    return key[sweep.line_dims.index("strategy")]


def _key(sweep: Sweep, row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[d]) for d in sweep.line_dims)
