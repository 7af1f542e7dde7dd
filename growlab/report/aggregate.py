"""Group completed runs and aggregate them over seeds; every number keeps its n.

A *line* is everything that identifies a configuration except depth and seed: the strategy,
plus model and data when the sweep varies them, plus any other config key the sweep varies
(see `collect.varying_keys`). A *group* is a line at one final depth.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from growlab.report.collect import (
    TRIGGER_NAME,
    Duplicate,
    RunRecord,
    is_number,
    trigger_name,
    varying_keys,
)
from growlab.report.formats import mean_pm
from growlab.report.metric import ACCURACY, Metric, sweep_metric


@dataclass
class Stat:
    mean: float
    std: float | None  # None when n < 2
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat | None:
        values = [float(v) for v in values if is_number(v)]
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else None
        return cls(statistics.fmean(values), std, len(values))

    def fmt(self, digits: int = 4) -> str:
        """Mean ± std rounded to what the std justifies (`digits` decimals without a std)."""
        return mean_pm(self.mean, self.std, digits)


LineKey = tuple[str, ...]


class Sweep:
    def __init__(self, runs: list[RunRecord], duplicates: list[Duplicate] | None = None) -> None:
        self.runs = runs
        # Folders holding a run already in `runs` (same config fingerprint): listed, not counted.
        self.duplicates = duplicates or []
        self.ok = [r for r in runs if r.ok]
        self.problems = [r for r in runs if not r.ok]
        self.extra_keys = varying_keys(runs)
        self.vary_model = len({r.model for r in runs}) > 1
        self.vary_data = len({r.data for r in runs}) > 1
        # The one number every table compares, and which way is better (mixed: refused).
        self.metric: Metric = sweep_metric(runs)

    @property
    def line_dims(self) -> list[str]:
        dims = ["model"] if self.vary_model else []
        dims += ["data"] if self.vary_data else []
        return dims + ["strategy", *self.extra_keys]

    def line_key(self, run: RunRecord) -> LineKey:
        values = {"model": run.model, "data": run.data, "strategy": run.strategy}
        values[TRIGGER_NAME] = trigger_name(run)  # a run that names none: the fixed schedule
        return tuple(str(values.get(d, run.config.get(d))) for d in self.line_dims)

    def line_fields(self, key: LineKey) -> dict[str, Any]:
        """A line's dimensions with the values its runs hold (numbers stay numbers), for
        report.json and the tables' CSV files."""
        run = next((r for r in self.ok if self.line_key(r) == key), None)
        if run is None:
            return dict(zip(self.line_dims, key, strict=True))
        values = {"model": run.model, "data": run.data, "strategy": run.strategy}
        values[TRIGGER_NAME] = trigger_name(run)
        return {d: values[d] if d in values else run.config.get(d) for d in self.line_dims}

    def line_label(self, key: LineKey) -> str:
        parts = []
        for dim, value in zip(self.line_dims, key, strict=True):
            parts.append(value if dim in ("model", "data", "strategy") else f"{dim}={value}")
        return " ".join(parts)

    def lines(self) -> dict[LineKey, list[RunRecord]]:
        out: dict[LineKey, list[RunRecord]] = {}
        for run in sorted(self.ok, key=lambda r: (self.line_key(r), r.depth or 0, r.seed or 0)):
            out.setdefault(self.line_key(run), []).append(run)
        return out

    def groups(self) -> dict[tuple[LineKey, int], list[RunRecord]]:
        out: dict[tuple[LineKey, int], list[RunRecord]] = {}
        for key, runs in self.lines().items():
            for run in runs:
                out.setdefault((key, run.depth or 0), []).append(run)
        return out

    def fixed(self) -> dict[str, str]:
        """What every run shares, for the report's header."""
        out = {}
        if not self.vary_model and self.runs:
            out["model"] = self.runs[0].model
        if not self.vary_data and self.runs:
            out["data"] = self.runs[0].data
        return out


# ---- per-run derived numbers ---------------------------------------------------------------
def growth_stages(run: RunRecord) -> list[dict[str, Any]]:
    return [s for s in run.stages if s.get("phase") == "grow"]


def max_preservation_error(run: RunRecord) -> float | None:
    errors = [s["preservation_error"] for s in run.stages if is_number(s.get("preservation_error"))]
    return max(errors) if errors else None


def mean_shock(run: RunRecord, what: str = "acc") -> float | None:
    """Mean change of validation accuracy (`what="loss"`: loss) at insertion (after − before)
    over the growths."""
    after, before = f"{what}_after", f"{what}_before"
    drops = [
        s["shock"][after] - s["shock"][before]
        for s in growth_stages(run)
        if isinstance(s.get("shock"), dict)
        and is_number(s["shock"].get(after))
        and is_number(s["shock"].get(before))
    ]
    return statistics.fmean(drops) if drops else None


def helped(run: RunRecord) -> tuple[int, int]:
    judged = [s["improved"] for s in run.stages if isinstance(s.get("improved"), bool)]
    return sum(judged), len(judged)


TEST_ACC = ("test_acc",)
TRAIN_ACC = ACCURACY.train_keys


def acc_by_depth(run: RunRecord, keys: tuple[str, ...] = TEST_ACC) -> dict[int, float]:
    """Accuracy (the first of `keys` recorded) at the end of the last stage at each depth."""
    out: dict[int, float] = {}
    for stage in run.stages:
        value = next((stage[k] for k in keys if is_number(stage.get(k))), None)
        if value is not None and isinstance(stage.get("depth"), int):
            out[stage["depth"]] = value
    return out


# ---- sweep-level aggregates ----------------------------------------------------------------
def depth_curves(
    sweep: Sweep, keys: tuple[str, ...] | None = None
) -> dict[LineKey, dict[int, Stat]]:
    """The first of `keys` (default: the sweep's primary metric) against depth per line, mean ±
    std over seeds.

    Each seed counts once per depth: its value comes from the run whose final depth is that
    depth when the sweep has one, else from the deepest run that grew through it.
    """
    keys = keys or (sweep.metric.key,)
    curves: dict[LineKey, dict[int, Stat]] = {}
    for key, runs in sweep.lines().items():
        chosen: dict[tuple[int, int | None], tuple[int, float]] = {}  # (depth, seed) -> rank, acc
        for run in runs:
            for depth, acc in acc_by_depth(run, keys).items():
                rank = 10**6 if run.depth == depth else run.depth or 0
                slot = (depth, run.seed)
                if slot not in chosen or rank > chosen[slot][0]:
                    chosen[slot] = (rank, acc)
        per_depth: dict[int, list[float]] = {}
        for (depth, _seed), (_rank, acc) in chosen.items():
            per_depth.setdefault(depth, []).append(acc)
        curves[key] = {d: s for d, v in sorted(per_depth.items()) if (s := Stat.of(v)) is not None}
    return curves


def flops_curves(sweep: Sweep) -> dict[int, dict[LineKey, list[tuple[float, Stat]]]]:
    """Per final depth and line: (mean cumulative training FLOPs, primary metric) per stage."""
    out: dict[int, dict[LineKey, list[tuple[float, Stat]]]] = {}
    for (key, depth), runs in sweep.groups().items():
        n_stages = min(len(r.stages) for r in runs)
        points = []
        for k in range(n_stages):
            flops = Stat.of([r.stages[k].get("cum_train_flops") for r in runs])
            acc = Stat.of([r.stages[k].get(sweep.metric.key) for r in runs])
            if flops is not None and acc is not None:
                points.append((flops.mean, acc))
        if points:
            out.setdefault(depth, {})[key] = points
    return dict(sorted(out.items()))


@dataclass
class HelpedCell:
    helped: int
    judged: int
    phase: str


def helped_matrix(sweep: Sweep) -> dict[LineKey, dict[int, HelpedCell]]:
    """Per line and stage, how many seeds' new stage lowered the validation loss.

    Uses each line's deepest runs, whose stages cover every depth of the line.
    """
    out: dict[LineKey, dict[int, HelpedCell]] = {}
    for key, runs in sweep.lines().items():
        deepest = max(r.depth or 0 for r in runs)
        row: dict[int, HelpedCell] = {}
        for run in (r for r in runs if (r.depth or 0) == deepest):
            for stage in run.stages:
                if not isinstance(stage.get("improved"), bool):
                    continue
                cell = row.setdefault(stage["stage"], HelpedCell(0, 0, str(stage.get("phase"))))
                cell.helped += int(stage["improved"])
                cell.judged += 1
        out[key] = dict(sorted(row.items()))
    return out


def preservation_by_operator(sweep: Sweep) -> dict[str, dict[str, list[float]]]:
    """Measured preservation errors per operator, split by line (null = not claimed)."""
    out: dict[str, dict[str, list[float]]] = {}
    for run in sweep.ok:
        for stage in growth_stages(run):
            if is_number(stage.get("preservation_error")):
                label = sweep.line_label(sweep.line_key(run))
                per_line = out.setdefault(run.operator, {})
                per_line.setdefault(label, []).append(stage["preservation_error"])
    return dict(sorted(out.items()))
