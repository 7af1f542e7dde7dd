"""One run's records, read for its page: epoch rows on one time axis, growth events, stages.

Reads only the output contract (summary.json, metrics.jsonl) and tolerates what a run in
progress, killed or diverged leaves: no summary, a half-written last line, stages missing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growlab.report.collect import RunRecord, is_number, load_run


@dataclass
class GrowthMark:
    """A growth between two epochs: `x` is the number of epochs trained before it."""

    x: int
    stage: int
    depth: int
    label: str


@dataclass
class RunData:
    record: RunRecord
    epochs: list[dict[str, Any]] = field(default_factory=list)  # each with "x": 1, 2, ...
    growth: list[GrowthMark] = field(default_factory=list)
    finetune_x: int | None = None  # epochs trained before the fine-tune phase began

    @property
    def stages(self) -> list[dict[str, Any]]:
        return self.record.stages

    @property
    def status_line(self) -> str:
        status = self.record.status
        if status == "completed":
            return "Status: completed."
        detail = f": {self.record.error}" if self.record.error else ""
        return f"Status: {status}{detail}. This page shows what the run recorded."


def read_rows(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl rows; a line cut short by a kill is skipped, not fatal."""
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def growth_label(row: dict[str, Any], operator: str) -> str:
    parts = [f"depth {row.get('depth')}", operator]
    error = row.get("preservation_error")
    if is_number(error):
        parts.append(f"err {error:.1e}")
    shock = row.get("shock") or {}
    before, after = shock.get("acc_before"), shock.get("acc_after")
    if is_number(before) and is_number(after):
        parts.append(f"acc {before:.2f}→{after:.2f}")
    return ", ".join(parts)


def load_run_data(run_dir: Path) -> RunData:
    record = load_run(run_dir, run_dir.parent)
    data = RunData(record)
    operator = str(record.summary.get("operator") or "")
    phases = {s.get("stage"): s.get("phase") for s in record.stages}
    for row in read_rows(run_dir / "metrics.jsonl"):
        event = row.get("event")
        if event == "epoch":
            stage = row.get("stage")
            if phases.get(stage) == "finetune" and data.finetune_x is None:
                data.finetune_x = len(data.epochs)
            data.epochs.append({**row, "x": len(data.epochs) + 1})
        elif event == "growth":
            data.growth.append(
                GrowthMark(
                    len(data.epochs),
                    row.get("stage", -1),
                    row.get("depth", -1),
                    growth_label(row, operator),
                )
            )
    return data


def stage_value(stage: dict[str, Any], *keys: str) -> float:
    """The first of `keys` the stage recorded as a number, else NaN."""
    for key in keys:
        value = stage.get(key)
        if is_number(value):
            return float(value)
    return math.nan
