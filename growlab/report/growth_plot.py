"""Where and when each growth trigger grew: one panel per trigger, one step line per run, its
depth (or width, for a widening strategy) against cumulative training FLOPs; the best fixed
schedule's runs of the same context in grey for reference; an × where a run stopped growing
early."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from growlab.report.aggregate import Sweep  # noqa: E402
from growlab.report.collect import RunRecord  # noqa: E402
from growlab.report.growth_facts import growth_axis, growth_path, stopped  # noqa: E402
from growlab.report.plots import _empty  # noqa: E402
from growlab.report.trigger_compare import (  # noqa: E402
    best_schedule,
    fixed_schedules,
    schedule_context,
    schedule_label,
    trigger_label,
    trigger_lines,
)

FILE = "growth.png"


def steps(run: RunRecord, axis: str) -> tuple[list[float], list[float]]:
    """The run's size over training FLOPs as a step line: stage k's size from the end of stage
    k − 1 (0 for the first) to its own end."""
    path = growth_path(run, axis)
    if not path:
        return [], []
    xs = [0.0, *(f for f, _ in path)]
    ys = [s for _, s in path] + [path[-1][1]]
    return xs, ys


def _draw(ax: Axes, run: RunRecord, axis: str, offset: float = 0.0, **style: object) -> None:
    xs, ys = steps(run, axis)
    if xs:
        ax.step(xs, [y + offset for y in ys], where="post", **style)  # type: ignore[arg-type]


def offsets(runs: list[RunRecord], axis: str) -> list[float]:
    """Small vertical shifts that keep runs with the same path apart (2% of the size range)."""
    sizes = [s for r in runs for _, s in growth_path(r, axis)]
    span = max(sizes) - min(sizes) if sizes else 0.0
    step = 0.02 * (span or 1.0)
    return [step * (i - (len(runs) - 1) / 2) for i in range(len(runs))]


def growth_plot(sweep: Sweep) -> Figure:
    lines = trigger_lines(sweep)
    schedules = fixed_schedules(sweep)
    n = max(1, len(lines))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(lines) :]:
        ax.set_visible(False)
    if not lines:
        axes[0][0].set_visible(True)
        _empty(axes[0][0], "no run grew by a trigger other than the fixed schedule")
    for ax, ((key, most), runs) in zip(axes.flat, lines.items(), strict=False):
        axis = growth_axis(runs)
        best = best_schedule(schedules.get(schedule_context(sweep, key), []), sweep.metric)
        if best is not None:
            for i, run in enumerate(best.runs):
                label = f"best fixed: {schedule_label(sweep, best)}" if i == 0 else None
                _draw(ax, run, axis, color="0.6", linestyle=":", label=label)
        runs = sorted(runs, key=lambda r: r.seed or 0)
        for i, (run, shift) in enumerate(zip(runs, offsets(runs, axis), strict=True)):
            color = f"C{i % 10}"
            _draw(ax, run, axis, shift, color=color, label=f"seed {run.seed}", alpha=0.85)
            path = growth_path(run, axis)
            if stopped(run) is not None and path:
                ax.plot([path[-1][0]], [path[-1][1] + shift], "x", color=color, ms=9)
        ax.set_xlabel("cumulative training FLOPs")
        ax.set_ylabel(axis)
        ax.set_title(trigger_label(sweep, (key, most)), fontsize=9)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("Where and when each trigger grew (× stopped growing early; runs offset slightly)")
    fig.tight_layout()
    return fig
