"""What one run's growth did, read from its stage records: where (its depth, or its width for a
widening strategy) and when (cumulative training FLOPs) it grew, what its trigger's signal cost
(`signal_flops`, recorded per stage and counted in the training FLOPs), and whether it stopped
growing early (summary `stopped_growing`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from growlab.report.collect import RunRecord, is_number

DEPTH, WIDTH = "depth", "width"


def size(stage: dict[str, Any], axis: str) -> float | None:
    """The stage's depth, or its width (`width`, else the widest of `widths`)."""
    value = stage.get(axis)
    if is_number(value):
        return float(value)
    widths = stage.get("widths")
    if axis == WIDTH and isinstance(widths, list) and widths and all(map(is_number, widths)):
        return float(max(widths))
    return None


def _changes(run: RunRecord, axis: str) -> bool:
    return len({size(s, axis) for s in run.stages} - {None}) > 1


def growth_axis(runs: Sequence[RunRecord]) -> str:
    """Width when the runs' width changes between stages and their depth never does (a
    widening strategy), depth otherwise."""
    widens = any(_changes(r, WIDTH) for r in runs)
    deepens = any(_changes(r, DEPTH) for r in runs)
    return WIDTH if widens and not deepens else DEPTH


def growth_path(run: RunRecord, axis: str) -> list[tuple[float, float]]:
    """(cumulative training FLOPs at the stage's end, the stage's size) per stage, in order."""
    return [
        (float(s["cum_train_flops"]), value)
        for s in run.stages
        if is_number(s.get("cum_train_flops")) and (value := size(s, axis)) is not None
    ]


def growth_flops(run: RunRecord, axis: str) -> list[float]:
    """The cumulative training FLOPs at which the run grew: the end of each stage after which
    its size went up."""
    path = growth_path(run, axis)
    return [f0 for (f0, s0), (_, s1) in zip(path, path[1:], strict=False) if s1 > s0]


def final_size(run: RunRecord, axis: str) -> float | None:
    path = growth_path(run, axis)
    return path[-1][1] if path else None


def signal_flops(run: RunRecord) -> float | None:
    """FLOPs the trigger spent on its signal, summed over the stages (None: none recorded)."""
    values = [float(s["signal_flops"]) for s in run.stages if is_number(s.get("signal_flops"))]
    return sum(values) if values else None


def signal_share(run: RunRecord) -> float | None:
    """The signal's FLOPs as a fraction of the run's cumulative training FLOPs."""
    spent = signal_flops(run)
    path = [float(s["cum_train_flops"]) for s in run.stages if is_number(s.get("cum_train_flops"))]
    if spent is None or not path or path[-1] <= 0:
        return None
    return spent / path[-1]


def stopped(run: RunRecord) -> dict[str, Any] | None:
    value = run.summary.get("stopped_growing")
    return value if isinstance(value, dict) else None


def stop_reason(run: RunRecord) -> str | None:
    value = stopped(run)
    return None if value is None else str(value.get("reason") or "stopped")
