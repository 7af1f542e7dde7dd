"""The report's four plots, drawn with matplotlib's Agg backend into PNG files."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from growlab.report.aggregate import (  # noqa: E402
    Sweep,
    depth_curves,
    flops_curves,
    helped_matrix,
    preservation_by_operator,
)

ZERO_FLOOR = 1e-16  # exact zeros drawn here on log axes


def _empty(ax: plt.Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def styles(sweep: Sweep) -> dict[tuple[str, ...], dict[str, str]]:
    """One colour and marker per line, the same in every plot (overlapping lines stay visible)."""
    markers = "osD^v<>"
    return {
        key: {
            "color": f"C{i % 10}",
            "marker": markers[i % len(markers)],
            "linestyle": "-" if i % 2 == 0 else "--",
        }
        for i, key in enumerate(sorted(sweep.lines()))
    }


def acc_vs_depth(sweep: Sweep) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves = depth_curves(sweep)
    for key, curve in curves.items():
        depths = list(curve)
        means = [curve[d].mean for d in depths]
        stds = [curve[d].std or 0.0 for d in depths]
        ns = [curve[d].n for d in depths]
        label = (
            f"{sweep.line_label(key)} (n={min(ns)}–{max(ns)})"
            if min(ns) != max(ns)
            else (f"{sweep.line_label(key)} (n={ns[0]})")
        )
        ax.errorbar(depths, means, yerr=stds, capsize=3, label=label, **styles(sweep)[key])
    if not curves:
        _empty(ax, "no completed runs")
    else:
        ax.set_xlabel("depth (hidden blocks)")
        ax.set_ylabel(sweep.metric.axis)
        ax.set_title(f"Test {sweep.metric.noun} vs depth (mean ± std over seeds)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def acc_vs_flops(sweep: Sweep) -> Figure:
    per_depth = flops_curves(sweep)
    style = styles(sweep)
    n = max(1, len(per_depth))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(per_depth) :]:
        ax.set_visible(False)
    if not per_depth:
        axes[0][0].set_visible(True)
        _empty(axes[0][0], "no completed runs")
    for ax, (depth, lines) in zip(axes.flat, per_depth.items(), strict=False):
        for key, points in lines.items():
            xs = [x for x, _ in points]
            ax.errorbar(
                xs,
                [s.mean for _, s in points],
                yerr=[s.std or 0.0 for _, s in points],
                capsize=3,
                **style[key],
                label=f"{sweep.line_label(key)} (n={points[-1][1].n})",
            )
        ax.set_xscale("log")
        ax.set_xlabel("cumulative training FLOPs")
        ax.set_ylabel(sweep.metric.axis)
        ax.set_title(f"final depth {depth}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Test {sweep.metric.noun} vs training compute (one point per stage)")
    fig.tight_layout()
    return fig


def train_vs_test(sweep: Sweep) -> Figure:
    """Train (dashed) and test (solid) metric (accuracy, or loss) by depth per line, mean over
    seeds: where the two part with depth, the deeper network overfits."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    metric = sweep.metric
    test, train = depth_curves(sweep, (metric.key,)), depth_curves(sweep, metric.train_keys)
    for key, curve in test.items():
        style = {k: v for k, v in styles(sweep)[key].items() if k != "linestyle"}
        label = sweep.line_label(key)
        ax.plot(list(curve), [s.mean for s in curve.values()], "-", label=f"{label} test", **style)
        if curve := train.get(key, {}):
            ax.plot(
                list(curve),
                [s.mean for s in curve.values()],
                "--",
                alpha=0.7,
                label=f"{label} train",
                **style,
            )
    if not test:
        _empty(ax, "no completed runs")
    else:
        ax.legend(fontsize=7)
    ax.set_xlabel("depth (hidden blocks)")
    ax.set_ylabel(f"{metric.noun} (mean over seeds), {metric.way} is better")
    ax.set_title(f"Train (dashed) vs test (solid) {metric.noun} by depth")
    fig.tight_layout()
    return fig


def helped_heatmap(sweep: Sweep) -> Figure:
    matrix = helped_matrix(sweep)
    stages = sorted({k for row in matrix.values() for k in row})
    keys = list(matrix)
    fig, ax = plt.subplots(figsize=(1.2 * max(3, len(stages)) + 3, 0.6 * max(2, len(keys)) + 1.5))
    if not stages:
        _empty(ax, "no stage was judged (a stage helps when it lowers the validation loss)")
        return fig
    values = [
        [row[k].helped / row[k].judged if k in row and row[k].judged else math.nan for k in stages]
        for row in matrix.values()
    ]
    image = ax.imshow(values, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(matrix.values()):
        for j, k in enumerate(stages):
            if k in row:
                cell = row[k]
                text = f"{cell.helped}/{cell.judged}" + (" ft" if cell.phase == "finetune" else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(stages)), [str(k) for k in stages])
    ax.set_yticks(range(len(keys)), [sweep.line_label(k) for k in keys])
    ax.set_xlabel("stage (ft = final fine-tune)")
    ax.set_title("Did the new stage help? (seeds where validation loss fell)")
    fig.colorbar(image, ax=ax, label="fraction of seeds")
    fig.tight_layout()
    return fig


def preservation(sweep: Sweep) -> Figure:
    data = preservation_by_operator(sweep)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if not data:
        _empty(ax, "no operator in this sweep claims to preserve the function")
        return fig
    labels = sorted({line for per_line in data.values() for line in per_line})
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for i, per_line in enumerate(data.values()):
        for j, (label, errors) in enumerate(sorted(per_line.items())):
            offset = (j - (len(per_line) - 1) / 2) * 0.15
            ys = [max(e, ZERO_FLOOR) for e in errors]
            ax.scatter([i + offset] * len(ys), ys, color=colors[label], alpha=0.7, s=18)
    for label in labels:
        ax.scatter([], [], color=colors[label], label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(data)), list(data))
    ax.set_xlabel("growth operator")
    ax.set_ylabel("max |f_before − f_after| at insertion")
    ax.set_title(f"Preservation error per growth (exact 0 drawn at {ZERO_FLOOR:g})")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


PLOTS: dict[str, Callable[[Sweep], Figure]] = {
    "acc_vs_depth.png": acc_vs_depth,
    "acc_vs_flops.png": acc_vs_flops,
    "train_vs_test.png": train_vs_test,
    "helped_matrix.png": helped_heatmap,
    "preservation_error.png": preservation,
}


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def draw_all(sweep: Sweep, out_dir: Path) -> list[Path]:
    return [save(draw(sweep), out_dir / name) for name, draw in PLOTS.items()]
