"""Evaluate a finished run's model on its test set, loaded either way seed 002 shows.

    python -m growlab.evaluate RUN_DIR [--stage N] [--whole-model]

Weights only (default): the architecture is rebuilt from the run's own config (.hydra/config.yaml)
by replaying its growth schedule, then the stage's state_dict is loaded into it. Whole model:
`checkpoints/model_full.pt`, the pickled nn.Module written when the run finished.
Prints the recorded and the reproduced test accuracy; exits 1 if they differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from growlab.data import load_data
from growlab.engine.checkpoint import stage_path
from growlab.engine.training import evaluate
from growlab.growth.nets import GrowableNet, build_network, initial_arch
from growlab.growth.strategies import build_strategy

WHOLE_MODEL = "model_full.pt"


def rebuild_from_config(
    cfg: DictConfig, stage: int, input_shape: tuple[int, ...], num_classes: int
) -> GrowableNet:
    """The architecture of `stage`, from the config alone: initial blocks, then each growth."""
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    strategy = build_strategy(cfg.strategy)
    plan = strategy.plan(cfg.depth, cfg.train.start_depth, cfg.train.epochs_per_stage)
    start = strategy.initial_depth(cfg.depth, cfg.train.start_depth)
    net = build_network(
        strategy.starting_arch(initial_arch(model_cfg, input_shape, num_classes, start))
    )
    for step in plan[1 : stage + 1]:
        if step.phase == "grow":
            strategy.grow(net)  # no data: a replay, the stage's weights are loaded next
    return net


def load_for_evaluation(run_dir: Path, stage: int | None, whole_model: bool):
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    summary = json.loads((run_dir / "summary.json").read_text())
    record = summary["stages"][-1 if stage is None else stage]
    data = load_data(cfg.data)
    extra = build_strategy(cfg.strategy).objective.evaluated
    if whole_model:
        net = torch.load(
            run_dir / "checkpoints" / WHOLE_MODEL, map_location="cpu", weights_only=False
        )
    else:
        path = stage_path(run_dir, record["stage"])
        if extra is not None:
            path = path.with_name(f"{path.stem}_{extra}.pt")
        net = rebuild_from_config(cfg, record["stage"], data.input_shape, data.num_classes)
        state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        net.load_state_dict(state)
    return net, data, record, cfg


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
    net, data, record, cfg = load_for_evaluation(args.run_dir, args.stage, args.whole_model)
    acc = evaluate(net, data.x_test, data.y_test, cfg.train.eval_batch_size).acc
    match = abs(acc - record["test_acc"]) <= 1e-6
    how = "whole model" if args.whole_model else "config + state_dict"
    print(
        f"{args.run_dir} stage {record['stage']} depth {record['depth']} "
        f"width {record.get('width')} ({how}): "
        f"test_acc {acc:.6f}, recorded {record['test_acc']:.6f} "
        f"-> {'reproduced' if match else 'MISMATCH'}"
    )
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
