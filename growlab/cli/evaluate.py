"""Evaluate a finished run's model on its test set, loaded either way seed 002 shows.

    python -m growlab.evaluate RUN_DIR [--stage N] [--whole-model]

Weights only (default): the architecture is rebuilt from the run's own config (.hydra/config.yaml)
by replaying its growth schedule, then the stage's state_dict is loaded into it. Whole model:
`checkpoints/model_full.pt`, the pickled nn.Module written when the run finished.
Prints the recorded and the reproduced test accuracy (and test loss, for a run judged by it,
e.g. a language model's); exits 1 if they differ, 2 (one line, no
traceback) when the folder cannot be evaluated: not a run (a sweep folder), an incomplete run, a
stage it does not have, a damaged checkpoint, a strategy or data set that cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from growlab.config import ConfigError
from growlab.data import load_data
from growlab.engine.replica_axis import Solo
from growlab.engine.run_directory.checkpoint import stage_path
from growlab.engine.training import evaluate
from growlab.growth.families import model_config
from growlab.growth.nets import GrowableNet, build_network, initial_arch
from growlab.growth.strategies import build_strategy, stage_plan

WHOLE_MODEL = "model_full.pt"
EXIT_REFUSED = 2
# What a damaged, truncated or foreign file raises while torch unpickles it, or a module it
# names raises when it is no longer importable.
UNREADABLE = (
    OSError,
    EOFError,
    RuntimeError,
    pickle.UnpicklingError,
    ImportError,
    AttributeError,
    ValueError,
    KeyError,
    TypeError,
)


class Unusable(Exception):
    """The folder cannot be evaluated; the message says why in one line."""


def rebuild_from_config(
    cfg: DictConfig,
    stage: int,
    input_shape: tuple[int, ...],
    num_classes: int,
    records: list[dict[str, Any]] | None = None,
) -> GrowableNet:
    """The architecture of `stage`, from the config: initial blocks, then each growth.
    `records`: the run's stage records (summary.json), whose growths are replayed where they
    happened (`grow_at`: a trigger may have steered them, or stopped growth); None: the
    config's plan, each growth at the strategy's own place."""
    model_cfg = model_config(cfg.model)
    strategy = build_strategy(cfg.strategy)
    start = strategy.initial_depth(cfg.depth, cfg.train.start_depth)
    net = build_network(
        strategy.starting_arch(initial_arch(model_cfg, input_shape, num_classes, start))
    )
    if records is not None and all("phase" in r for r in records):
        done = [r for r in records if 0 < r["stage"] <= stage]
        growths = [r.get("grow_at") for r in done if r["phase"] == "grow"]
    else:
        growths = [None for p in stage_plan(strategy, cfg)[1 : stage + 1] if p.phase == "grow"]
    for at in growths:  # no data: a replay, the stage's weights are loaded next
        if at is None:  # as before steering: a user's strategy may not take `at`
            strategy.grow(net)
        else:
            strategy.grow(net, None, at)
    return net


def load_for_evaluation(run_dir: Path, stage: int | None, whole_model: bool):
    cfg, summary = read_run(run_dir)
    record = pick_stage(summary, stage)
    try:
        extra = build_strategy(cfg.strategy).objective.evaluated
    except (HydraException, OmegaConfBaseException, ImportError, TypeError, ValueError) as exc:
        raise Unusable(f"the run's strategy cannot be built: {_first_line(exc)}") from None
    try:
        data = load_data(cfg.data)
    except (ConfigError, OSError) as exc:
        raise Unusable(f"the run's data cannot be loaded: {_first_line(exc)}") from None
    if whole_model:
        net = _load(run_dir / "checkpoints" / WHOLE_MODEL)
        if not isinstance(net, torch.nn.Module):
            raise Unusable(f"{run_dir / 'checkpoints' / WHOLE_MODEL} holds no model")
    else:
        path = stage_path(run_dir, record["stage"])
        if extra is not None:
            path = path.with_name(f"{path.stem}_{extra}.pt")
        stages = summary.get("stages")
        records = stages if isinstance(stages, list) else None
        net = rebuild_from_config(cfg, record["stage"], data.input_shape, data.num_classes, records)
        payload = _load(path)
        try:
            net.load_state_dict(payload["state_dict"])
        except UNREADABLE as exc:
            raise Unusable(f"{path} does not fit the run's network: {_first_line(exc)}") from None
    return net, data, record, cfg


def read_run(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The run's config and summary, refused unless the folder holds one completed run."""
    if not run_dir.is_dir():
        raise Unusable(f"{run_dir} is not a folder")
    config = run_dir / ".hydra" / "config.yaml"
    if not config.is_file():
        runs = sorted(p.parent.parent.name for p in run_dir.glob("*/.hydra/config.yaml"))
        if runs:
            shown = ", ".join(runs[:5]) + (", ..." if len(runs) > 5 else "")
            raise Unusable(f"{run_dir} is a sweep folder; pass one of its runs: {shown}")
        raise Unusable(f"{run_dir} is not a run folder (no .hydra/config.yaml)")
    path = config
    try:
        cfg = OmegaConf.load(config)
        path = run_dir / "summary.json"
        summary = json.loads(path.read_text())
    except (OSError, ValueError, OmegaConfBaseException, yaml.YAMLError) as exc:
        raise Unusable(f"{path} cannot be read: {_first_line(exc)}") from None
    if not isinstance(summary, dict) or not isinstance(cfg, DictConfig):
        raise Unusable(f"{run_dir / 'summary.json'} is not a run's summary")
    status = summary.get("status")
    if status != "completed":
        raise Unusable(f"{run_dir} holds no completed run (status: {status})")
    return cfg, summary


def pick_stage(summary: dict[str, Any], stage: int | None) -> dict[str, Any]:
    stages = summary.get("stages")
    if not isinstance(stages, list) or not stages:
        raise Unusable("the run's summary records no stage")
    if stage is None:
        return stages[-1]
    if not 0 <= stage < len(stages):
        raise Unusable(f"--stage {stage} is not a stage of this run; valid: 0..{len(stages) - 1}")
    return stages[stage]


def _load(path: Path) -> Any:
    if not path.is_file():
        raise Unusable(f"{path} is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except UNREADABLE as exc:
        raise Unusable(f"{path} cannot be read (damaged?): {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    # torch's message for a damaged file goes on for several sentences.
    return text.split(", set env var HYDRA_FULL_ERROR")[0].split(". ")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m growlab.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--stage", type=int, default=None, help="stage index (default: last)")
    parser.add_argument(
        "--whole-model",
        action="store_true",
        help="load checkpoints/model_full.pt instead of rebuilding + state_dict",
    )
    args = parser.parse_args(argv)
    if args.whole_model and args.stage is not None:
        parser.error("--whole-model holds the final model only; drop --stage")
    try:
        net, data, record, cfg = load_for_evaluation(args.run_dir, args.stage, args.whole_model)
    except Unusable as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    objective = build_strategy(cfg.strategy).objective
    x, y = data.x_test, data.y_test
    if objective.evaluated is None:  # the network itself, on its objective's targets and loss
        (result,) = evaluate(
            Solo(net, objective.loss), x, objective.targets(x, y), cfg.train.eval_batch_size
        )
    else:  # the objective's extra model: a classifier
        (result,) = evaluate(Solo(net), x, y, cfg.train.eval_batch_size)
    recorded = record["test_acc"]
    how = "whole model" if args.whole_model else "config + state_dict"
    line = (
        f"{args.run_dir} stage {record['stage']} depth {record['depth']} "
        f"width {record.get('width')} ({how}): "
    )
    if recorded is None:  # no accuracy (a regression objective): NaN, null in summary.json
        match = math.isnan(result.acc)
        line += "test_acc none"
    else:
        match = abs(result.acc - recorded) <= 1e-6
        line += f"test_acc {result.acc:.6f}, recorded {recorded:.6f}"
    metric = objective.primary_metric
    if metric is not None:  # a lower-is-better loss judges the run: it must match too
        match = match and abs(result.loss - record[metric]) <= 1e-6 * max(1.0, record[metric])
        line += f"; {metric} {result.loss:.6f}, recorded {record[metric]:.6f}"
    print(f"{line} -> {'reproduced' if match else 'MISMATCH'}")
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
