"""Which runs are compared with which: a run and the baseline strategy's run of the same seed
and the same everything else the sweep varies (depth, data, model, any swept config key that is
not part of a strategy's or a trigger's recipe), so every comparison is a per-seed difference
and nothing is ever averaged across data sets or models."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from growlab.report.aggregate import LineKey, Sweep
from growlab.report.collect import RunRecord, is_number
from growlab.report.select import ReportInputError, value_of
from growlab.report.stats import Paired

TRIGGER_PREFIX = "trigger."


@dataclass
class Pair:
    run: RunRecord
    baseline: RunRecord


def shared_keys(sweep: Sweep, baseline: str | None = None) -> list[str]:
    """Swept config keys a run must share with its baseline partner: those that vary within a
    strategy. A key with one value per strategy (a learning rate tuned for each) is part of
    that strategy's recipe, like its `strategy.*` keys; a `trigger.*` key is part of a run's
    recipe too (a plateau-triggered run pairs with the baseline's run of its seed), unless the
    baseline's own runs vary in it."""
    out = []
    for key in sweep.extra_keys:
        values: dict[str, set[str]] = {}
        for run in sweep.ok:
            values.setdefault(run.strategy, set()).add(json.dumps(run.config.get(key), default=str))
        if key.startswith("strategy.") or not any(len(v) > 1 for v in values.values()):
            continue
        if key.startswith(TRIGGER_PREFIX) and len(values.get(str(baseline), ())) < 2:
            continue
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


def pairing_keys(
    sweep: Sweep, pair_on: list[str] | None = None, baseline: str | None = None
) -> list[str]:
    """The keys a pair shares, for the tables' notes."""
    if pair_on is not None:
        return ["model", "data", *pair_on]
    return ["model", "data", "depth", "seed", *shared_keys(sweep, baseline)]


def partners_of(
    sweep: Sweep, baseline: str, pair_on: list[str] | None = None
) -> dict[str, RunRecord]:
    """The baseline's runs by pair key; with `pair_on`, two baseline runs with one key are
    refused (which of them a run pairs with would be a guess)."""
    keys = shared_keys(sweep, baseline)
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
    keys = shared_keys(sweep, baseline)
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


def interval_fields(result: Paired | None) -> dict[str, Any]:
    if result is None:
        return {"n": 0, "delta_mean": None, "ci_low": None, "ci_high": None, "p_value": None}
    return {
        "n": result.n,
        "delta_mean": result.mean,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
    }


def mean_of(values: list[float]) -> float | None:
    values = [v for v in values if is_number(v)]
    return sum(values) / len(values) if values else None
