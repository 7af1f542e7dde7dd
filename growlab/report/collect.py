"""Read a sweep directory through the output contract only: summary.json, .hydra/, metrics.jsonl.

A run directory is any folder holding one of those three; folders below a run directory
(checkpoints, wandb, .hydra) are not searched. A run without a summary.json, or whose summary
still says `running`, is incomplete; one whose summary says `failed` or `diverged` is kept with
its error. Only completed runs with a final test accuracy are averaged.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from growlab.engine.run_directory.result_identity import NOT_RESULT, fingerprint, flatten

MARKERS = ("summary.json", "metrics.jsonl", ".hydra")
# Config keys that never split a group: they are the seed, identify the run, or only say where
# and how it was logged.
NOT_GROUPING = ("seed", "depth", "strategy.name", "model.name", "data.name", "device")
NOT_GROUPING_PREFIXES = ("logger.", "hydra.")
DEFAULT_METRIC = "test_acc"  # a run that names no primary_metric (every run from before LMs)


@dataclass
class RunRecord:
    path: Path
    name: str  # relative to the sweep directory
    status: str  # completed | failed | diverged | incomplete | invalid
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # flattened, dotted keys
    error: str | None = None
    metric_rows: int = 0

    def get(self, key: str, config_key: str | None = None) -> Any:
        value = self.summary.get(key)
        if value is None and config_key is not None:
            value = self.config.get(config_key)
        return value

    @property
    def strategy(self) -> str:
        return str(self.get("strategy", "strategy.name"))

    @property
    def model(self) -> str:
        return str(self.get("model", "model.name"))

    @property
    def data(self) -> str:
        return str(self.get("data", "data.name"))

    @property
    def operator(self) -> str:
        return str(self.get("operator", "strategy.operator"))

    @property
    def depth(self) -> int | None:
        value = self.get("depth", "depth")
        return int(value) if isinstance(value, int | float) else None

    @property
    def seed(self) -> int | None:
        value = self.get("seed", "seed")
        return int(value) if isinstance(value, int | float) else None

    @property
    def stages(self) -> list[dict[str, Any]]:
        return list(self.summary.get("stages") or [])

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def primary_metric(self) -> str:
        """The number this run is compared by (growlab.report.metric says which way is better)."""
        return str(self.summary.get("primary_metric") or DEFAULT_METRIC)

    @property
    def final(self) -> float | None:
        """The primary metric at the end: the summary's, else the last stage's that has it."""
        key = self.primary_metric
        if is_number(self.summary.get(key)):
            return float(self.summary[key])
        values = [s[key] for s in self.stages if isinstance(s, dict) and is_number(s.get(key))]
        return float(values[-1]) if values else None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def find_run_dirs(sweep_dir: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(sweep_dir):
        names = set(files) | set(dirs)
        if any(m in names for m in MARKERS):
            found.append(Path(root))
            dirs.clear()  # a run directory's own folders hold no runs
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "wandb")
    return sorted(found)


def load_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    try:
        conf = OmegaConf.load(path)
        try:
            tree = OmegaConf.to_container(conf, resolve=True)
        except Exception:  # noqa: BLE001 - e.g. an interpolation needing Hydra's resolvers
            tree = OmegaConf.to_container(conf, resolve=False)
    except Exception:  # noqa: BLE001 - an unreadable config only loses the config columns
        return {}
    return flatten(tree)


def count_rows(path: Path) -> int:
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def load_run(run_dir: Path, sweep_dir: Path) -> RunRecord:
    name = str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name
    record = RunRecord(path=run_dir, name=name, status="incomplete")
    record.config = load_config(run_dir)
    record.metric_rows = count_rows(run_dir / "metrics.jsonl")
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        record.error = "no summary.json (never started or killed before the first stage)"
        return record
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        record.error = f"unreadable summary.json: {exc}"
        return record
    if not isinstance(summary, dict):
        record.status = "invalid"
        record.error = f"summary.json holds a JSON {type(summary).__name__}, not an object"
        return record
    record.summary = summary
    if isinstance(summary.get("config"), dict):
        # The keys that make the run's result, as the run itself recorded them (the same
        # flattening as its fingerprint); `.hydra/` only for runs from before that record.
        record.config = summary["config"]
    status = str(record.summary.get("status", "incomplete"))
    record.error = record.summary.get("error")
    metric = record.primary_metric
    if status == "completed" and not is_number(record.summary.get("test_acc")):
        status, record.error = "invalid", record.error or "completed without a final test_acc"
    elif status == "completed" and record.final is None:
        status, record.error = "invalid", record.error or f"completed without a final {metric}"
    elif status not in ("completed", "failed", "diverged"):
        record.error = record.error or f"status {status!r}: stopped before the end"
        status = "incomplete"
    record.status = status
    return record


def collect(sweep_dir: Path) -> list[RunRecord]:
    return [load_run(d, sweep_dir) for d in find_run_dirs(sweep_dir)]


def run_fingerprint(run: RunRecord) -> str | None:
    """The run's config fingerprint as recorded (None: it recorded no result config)."""
    recorded = run.summary.get("config_fingerprint")
    if isinstance(recorded, str) and recorded:
        return recorded
    config = run.summary.get("config")
    return fingerprint(config) if isinstance(config, dict) and config else None


@dataclass
class Duplicate:
    run: RunRecord
    same_as: RunRecord
    fingerprint: str


def deduplicate(runs: list[RunRecord]) -> tuple[list[RunRecord], list[Duplicate]]:
    """Each run once: folders holding the same result config (a sweep copied or rerun
    elsewhere) are one run, kept as the first completed one (else the first) by name; the
    others are returned as duplicates, never averaged."""
    by_print: dict[str, list[RunRecord]] = {}
    for run in runs:
        key = run_fingerprint(run)
        if key is not None:
            by_print.setdefault(key, []).append(run)
    kept_of: dict[int, RunRecord] = {}
    duplicates: list[Duplicate] = []
    for key, group in by_print.items():
        keep = next((r for r in group if r.ok), group[0])
        for run in group:
            if run is not keep:
                kept_of[id(run)] = keep
                duplicates.append(Duplicate(run, keep, key))
    return [r for r in runs if id(r) not in kept_of], duplicates


def varying_keys(runs: list[RunRecord]) -> list[str]:
    """Config keys whose values differ between runs and that should split groups.

    A `strategy.*` key counts only when it varies within one strategy name (otherwise it is
    just part of what the strategy is); a `trigger.*` key likewise within one trigger name, which
    itself always counts when it varies. Keys that change speed or bookkeeping, not results
    (`train.num_threads`, say), never count.
    """
    configured = [r for r in runs if r.config]
    keys = sorted({k for r in configured for k in r.config})
    out = []
    for key in keys:
        if key in NOT_GROUPING or key in NOT_RESULT or key.startswith(NOT_GROUPING_PREFIXES):
            continue
        values = {json.dumps(config_value(r, key), sort_keys=True) for r in configured}
        if len(values) < 2:
            continue
        recipe = next((name for prefix, name in RECIPES.items() if key.startswith(prefix)), None)
        if recipe is not None and key != TRIGGER_NAME:
            per_recipe: dict[str, set[str]] = {}
            for r in configured:
                per_recipe.setdefault(recipe(r), set()).add(json.dumps(r.config.get(key)))
            if all(len(v) < 2 for v in per_recipe.values()):
                continue
        out.append(key)
    return out


TRIGGER_NAME = "trigger.name"
FIXED_TRIGGER = "fixed"  # a run whose config names no trigger grew on the fixed schedule


def trigger_name(run: RunRecord) -> str:
    return str(run.config.get(TRIGGER_NAME) or FIXED_TRIGGER)


def config_value(run: RunRecord, key: str) -> Any:
    """A config value, the trigger's name as `trigger_name` reads it (a run from before
    triggers, which names none, and a run that names `fixed` grew alike)."""
    return trigger_name(run) if key == TRIGGER_NAME else run.config.get(key)


# Keys under a prefix are part of what the named recipe is (a strategy's operator, a trigger's
# patience): they split groups only where they vary within one strategy (one trigger).
RECIPES: dict[str, Callable[[RunRecord], str]] = {
    "strategy.": lambda r: r.strategy,
    "trigger.": trigger_name,
}
