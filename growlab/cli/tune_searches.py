"""Reading finished Optuna searches for `python -m growlab.tune_to_sweep`: each search's best
parameters, the completed trial that holds them, and every other override it ran with."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from growlab.engine.outcome import DIRECTIONS

RESULTS = "optimization_results.yaml"


class Refused(Exception):
    """The input cannot give a comparison sweep; the message says why in one line."""


@dataclass(frozen=True)
class Search:
    folder: Path
    strategy: str
    fixed: tuple[str, ...]  # the best trial's overrides that carry over, in its order
    tuned: tuple[str, ...]  # its override of each searched key (the best values)
    value: float
    metric: str
    seeds: frozenset[int]  # the seeds its trials ran with
    searchpath: tuple[str, ...]
    groups: frozenset[str]  # config groups (for the defaults list of --write)

    def settings(self) -> dict[str, str]:
        return {override_key(o): o.input_line for o in parse_overrides(self.fixed)}


def read_search(folder: Path) -> Search:
    """The search in `folder`: its best trial's overrides, value, strategy and seeds."""
    if not folder.is_dir():
        raise Refused(f"{folder} is not a folder; expected the hydra.sweep.dir of an Optuna search")
    results = folder / RESULTS
    trials = sorted(p.parent.parent for p in folder.glob("*/.hydra/overrides.yaml"))
    summaries = {t: _summary(t) for t in trials}
    if not results.is_file():
        if any(s.get("status") for s in summaries.values()):  # the search ran: none completed
            raise Refused(f"{folder}: no trial completed ({_statuses(summaries)}); no {RESULTS}")
        raise Refused(
            f"{folder} has no {RESULTS}; expected the hydra.sweep.dir of a finished Optuna "
            "search (python -m growlab -m hydra/sweeper=optuna ...)"
        )
    found = _load_yaml(results)
    best = found.get("best_params") if isinstance(found, dict) else None
    if not isinstance(best, dict):
        raise Refused(f"{results} has no best_params (a multi-objective search is not supported)")
    done = [t for t in trials if summaries[t].get("status") == "completed"]
    if not done:
        raise Refused(f"{folder}: no trial completed ({_statuses(summaries)})")
    wanted = {_strip(str(k)): v for k, v in best.items()}
    for trial in done:
        overrides = parse_overrides(_load_yaml(trial / ".hydra" / "overrides.yaml"))
        values = {override_key(o): o.value() for o in overrides}
        if all(values.get(k) == v for k, v in wanted.items()):
            return _search(folder, trial, overrides, wanted, found, summaries)
    shown = " ".join(f"{k}={v}" for k, v in wanted.items())
    raise Refused(f"{folder}: no completed trial ran the best parameters {shown}")


def _search(
    folder: Path,
    trial: Path,
    overrides: list[Override],
    searched: dict[str, Any],
    found: dict[str, Any],
    summaries: dict[Path, dict[str, Any]],
) -> Search:
    hydra = _mapping(_mapping(_load_yaml(trial / ".hydra" / "hydra.yaml")).get("hydra"))
    config = _mapping(_load_yaml(trial / ".hydra" / "config.yaml"))
    choices = _mapping(_mapping(hydra.get("runtime")).get("choices"))
    kept = [
        o
        for o in overrides
        if override_key(o) != "seed" and not override_key(o).startswith("hydra.")
    ]
    return Search(
        folder=folder,
        strategy=str(summaries[trial].get("strategy")),
        fixed=tuple(o.input_line for o in kept if override_key(o) not in searched),
        tuned=tuple(o.input_line for o in kept if override_key(o) in searched),
        value=float(found.get("best_value", "nan")),
        metric=str(config.get("return_metric", "val_acc")),
        seeds=frozenset(int(s["seed"]) for s in summaries.values() if "seed" in s),
        searchpath=tuple(str(p) for p in hydra.get("searchpath") or ()),
        groups=frozenset(str(g) for g in choices if not str(g).startswith("hydra")),
    )


def one_per_strategy(searches: list[Search]) -> list[Search]:
    """One search per strategy: two with the same settings keep the better best value."""
    chosen: dict[str, Search] = {}
    for search in searches:
        other = chosen.get(search.strategy)
        if other is None:
            chosen[search.strategy] = search
            continue
        ours, theirs = search.settings(), other.settings()
        differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        if differ:
            shown = ", ".join(
                f"{theirs.get(k, f'{k} unset')} vs {ours.get(k, f'{k} unset')}" for k in differ
            )
            raise Refused(
                f"{other.folder} and {search.folder} both tune {search.strategy} with different "
                f"fixed settings ({shown}); pass one of them"
            )
        if {override_key(o) for o in parse_overrides(search.tuned)} != {
            override_key(o) for o in parse_overrides(other.tuned)
        }:
            raise Refused(
                f"{other.folder} and {search.folder} both tune {search.strategy} but search "
                "different keys; pass one of them"
            )
        sign = -1 if DIRECTIONS.get(search.metric) == "minimize" else 1
        better = sign * search.value > sign * other.value
        keep, drop = (search, other) if better else (other, search)
        print(
            f"{search.strategy}: {keep.folder} beats {drop.folder} ({keep.metric})", file=sys.stderr
        )
        chosen[search.strategy] = keep
    return list(chosen.values())


def unpaired_settings(searches: list[Search]) -> str | None:
    """Settings (other than the strategy's own) that differ between the searches: the report
    pairs only runs that agree on them."""
    settings = [s.settings() for s in searches]
    keys = sorted({k for one in settings for k in one if not k.startswith("strategy")})
    differ = [k for k in keys if len({one.get(k, f"{k} unset") for one in settings}) > 1]
    if not differ:
        return None
    shown = "; ".join(
        f"{s.strategy}: {' '.join(one.get(k, f'{k} unset') for k in differ)}"
        for s, one in zip(searches, settings, strict=True)
    )
    why = "the report pairs only runs that agree"
    return f"note: the searches differ in {', '.join(differ)} ({shown}); {why}"


def parse_overrides(overrides: Any) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides([str(o) for o in overrides])
    except HydraException as exc:
        raise Refused(f"an override cannot be parsed: {str(exc).splitlines()[0]}") from None


def override_key(override: Override) -> str:
    return override.key_or_group


def _strip(key: str) -> str:
    return key.lstrip("+~")


def _summary(trial: Path) -> dict[str, Any]:
    try:
        summary = json.loads((trial / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _statuses(summaries: dict[Path, dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for summary in summaries.values():
        status = str(summary.get("status", "no summary"))
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trial folder"


def _load_yaml(path: Path) -> Any:
    try:
        return OmegaConf.to_container(OmegaConf.load(path))
    except (OSError, OmegaConfBaseException, yaml.YAMLError) as exc:
        raise Refused(f"{path} cannot be read: {str(exc).splitlines()[0]}") from None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
