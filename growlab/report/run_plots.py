"""The figures of one run's page: learning curves with growth events, accuracy by depth
(seed 004's train-versus-test plot) and per-block norms as a stage x block heat map."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from growlab.report.collect import is_number  # noqa: E402
from growlab.report.run_data import RunData, stage_value  # noqa: E402


def _series(data: RunData, key: str) -> tuple[list[int], list[float]]:
    points = [(row["x"], row[key]) for row in data.epochs if is_number(row.get(key))]
    return [x for x, _ in points], [y for _, y in points]


def _note(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def learning_curves(data: RunData) -> Figure:
    fig, (loss_ax, acc_ax) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "acc")):
        drawn = False
        for split, style in (("train", "-"), ("val", "--")):
            xs, ys = _series(data, f"{split}_{metric}")
            if xs:
                ax.plot(xs, ys, style, marker=".", label=f"{split} {metric}")
                drawn = True
        if drawn:
            ax.legend(loc="best", fontsize=8)
        else:
            _note(ax, f"no {metric} recorded per epoch")
    marks = [(m.x, m.label, "C3", "-") for m in data.growth]
    if data.finetune_x is not None:
        marks.append((data.finetune_x, "fine-tune", "0.3", ":"))
    for x, label, color, style in marks:  # between the last epoch before and the first after
        for ax in (loss_ax, acc_ax):
            ax.axvline(x + 0.5, color=color, linestyle=style, alpha=0.7, linewidth=1)
        loss_ax.annotate(
            label,
            (x + 0.5, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            color=color,
        )
    loss_ax.set_ylabel("loss")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_xlabel("epoch (all stages)")
    fig.suptitle(
        "learning curves; red lines: growth (depth, operator, preservation error, shock)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def accuracy_by_depth(data: RunData) -> Figure:
    """Seed 004's plot: train, validation and test accuracy at the end of each stage (for a run
    ranked by its loss, the loss)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    stages = data.stages
    depths = [s.get("depth") for s in stages]
    by_loss = data.record.primary_metric != "test_acc"
    name = "loss" if by_loss else "accuracy"
    keys = (("train_loss",), ("val_loss",), (data.record.primary_metric,)) if by_loss else (
        ("classifier_train_acc", "train_acc"), ("val_acc",), ("test_acc",)
    )  # fmt: skip
    series = {
        split: [stage_value(s, *k) for s in stages]
        for split, k in zip(("train", "val", "test"), keys, strict=True)
    }
    drawn = False
    for (split, values), marker in zip(series.items(), "os^", strict=True):
        points = [(d, v) for d, v in zip(depths, values, strict=True) if not math.isnan(v)]
        if points:
            ax.plot(*zip(*points, strict=True), marker=marker, label=split)
            drawn = True
    if drawn:
        ax.legend(loc="best")
    else:
        _note(ax, "no stage has finished yet")
    ax.set_xlabel("depth (hidden blocks)")
    ax.set_ylabel(name + (", lower is better" if by_loss else ""))
    ax.set_title(f"{name} after each stage", fontsize=10)
    fig.tight_layout()
    return fig


def block_norms(data: RunData) -> Figure | None:
    """Per-block activation and gradient norms, stage x block; None when none were recorded."""
    keys = [("activation_norms", "activation norm"), ("activation_grad_norms", "gradient norm")]
    rows = {key: [s.get(key) or [] for s in data.stages] for key, _ in keys}
    if not any(any(r) for r in rows.values()):
        return None
    width = max(len(r) for values in rows.values() for r in values)
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.5 * len(data.stages) + 2.2))
    for ax, (key, title) in zip(axes, keys, strict=True):
        grid = np.full((len(data.stages), width), np.nan)
        for i, values in enumerate(rows[key]):
            grid[i, : len(values)] = [v if is_number(v) else np.nan for v in values]
        image = ax.imshow(grid, aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("block")
        ax.set_ylabel("stage")
        ax.set_yticks(range(len(data.stages)))
    fig.tight_layout()
    return fig


def draw_run(data: RunData, out_dir: Path) -> list[Path]:
    figures = {
        "curves": learning_curves(data),
        "acc_by_depth": accuracy_by_depth(data),
        "block_norms": block_norms(data),
    }
    paths = []
    for name, fig in figures.items():
        if fig is None:
            continue
        path = out_dir / f"run_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
