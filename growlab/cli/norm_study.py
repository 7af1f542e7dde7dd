"""Output norm of untrained growlab MLPs against depth, without and with normalisation (seed 003).

Seed 003 builds MLPs ``Flatten -> [Linear(c, 512) -> (norm) -> ReLU] * n -> Linear(c, 102)`` with
PyTorch's default initialisation, feeds them one batch and prints the size of the output as the
number n of hidden layers grows: without normalisation it shrinks, with BatchNorm or LayerNorm
(placed before the ReLU) it stays roughly constant. This module repeats that measurement with
growlab's own networks.

What is measured, and how it maps onto growlab
----------------------------------------------
* Depth. The seed's n is the number of hidden layers, i.e. the length of its ``layer_size`` list;
  n = 0 is the bare classifier ``Linear(input, 102)``. Every hidden layer is a growlab
  ``Block`` (linear -> norm -> activation, the same order as the seed), so ``depth`` here is the
  seed's n and equals the number of growlab blocks: ``initial_arch(model_cfg, input_shape,
  num_classes, depth)``. growlab cannot express n = 0 for an MLP (its head is
  ``Linear(width, classes)``, which cannot take the flattened input), so the depth-0 row is the
  seed's bare ``Flatten -> Linear(input, classes)`` and is marked ``builder = "linear"``; with no
  hidden layer there is no norm layer either, so that row is the same network for every norm type.
* Output norm. The seed prints ``net(x).norm()``: the Frobenius (L2) norm of the whole
  ``(batch, classes)`` output tensor of one batch, so it grows like sqrt(batch). ``output_norm`` is
  exactly that quantity; ``per_sample_norm`` is the batch-size-free mean of the per-sample L2 norms.
* Input. The seed's norm experiment does not use Flowers102 images but ``torch.randn(10, 3, 128,
  128)``: a batch of 10 standard-normal inputs of dimension 3*128*128 = 49152. That is the default
  here (flat, of dimension ``--input-dim``; the ``Flatten`` stem makes the layout irrelevant).
  ``--data flowers102`` instead takes a random batch of growlab's Flowers102 training images
  (``growlab.data.load_data``; note growlab standardises pixels per channel, the seed's loader
  did not).
* Mode. The seed never calls ``.eval()``, so its fresh networks are in train mode and BatchNorm
  normalises with the statistics of the batch itself. The networks here are put in train mode too,
  for the same reason and because it is the forward pass of an untrained network during training;
  in eval mode a fresh BatchNorm (running mean 0, variance 1) is almost the identity and would
  measure nothing. Gradients are off; running statistics get updated but are never read.

For each seed the input batch comes from its own generator, and for a given (seed, depth) every
norm type gets the same linear weights (the RNG is reset before each build; norm layers draw no
random numbers), so the norm types differ only by the norm layers. Results are mean and standard
deviation over seeds.

``predicted_output_norm`` is the mean-field value for PyTorch's default ``nn.Linear``
initialisation (weights and biases uniform in +-1/sqrt(fan_in), variance 1/(3 fan_in)): a linear
layer maps the second moment q of its input to q/3 + 1/(3 fan_in), ReLU halves it, and a norm layer
resets the pre-activation variance to 1. Without norm this shrinks the output by about sqrt(6) per
layer until the bias term takes over (about 0.9 for width 512, batch 10 and 102 classes).

Run ``python -m growlab.norm_study --help``; it writes ``norm_study.csv``, ``norm_study.json`` and
``norm_study.png`` into ``--out`` and prints a depth x norm table.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from growlab.cli.norm_measure import (
    CSV_FIELDS,
    SEED_INPUT_DIM,
    derived_seed,
    measure_output_norms,
)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Depth rows x norm columns, 'mean +- std' of the output norm."""
    norms = list(dict.fromkeys(r["norm"] for r in rows))
    depths = sorted({r["depth"] for r in rows})
    cell = {(r["depth"], r["norm"]): r for r in rows}
    lines = ["depth " + "".join(f"{n:>20}" for n in norms)]
    for d in depths:
        parts = [
            f"{cell[(d, n)]['output_norm']:9.4f} +- {cell[(d, n)]['output_norm_std']:7.4f}"
            for n in norms
        ]
        lines.append(f"{d:>5} " + "".join(f"{p:>20}" for p in parts))
    return "\n".join(lines)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, norm in enumerate(dict.fromkeys(r["norm"] for r in rows)):
        sel = [r for r in rows if r["norm"] == norm]
        color = f"C{i}"
        ax.errorbar(
            [r["depth"] for r in sel],
            [r["output_norm"] for r in sel],
            yerr=[r["output_norm_std"] for r in sel],
            marker="o",
            capsize=3,
            color=color,
            label=f"norm={norm}",
        )
        predicted = [r["predicted_output_norm"] for r in sel]
        if not any(math.isnan(p) for p in predicted):
            ax.plot([r["depth"] for r in sel], predicted, ls="--", lw=1, color=color, alpha=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("depth (hidden layers = growlab blocks; 0 = bare linear classifier)")
    ax.set_ylabel("output norm ||f(x)||  (whole batch)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="solid: measured, dashed: mean-field", fontsize=8, title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def flowers_batches(batch: int, seeds: Sequence[int]) -> tuple[list[torch.Tensor], int]:
    """One random batch of growlab's Flowers102 training images per seed, and the class count."""
    from hydra import compose, initialize_config_module

    from growlab.config import ConfigError
    from growlab.config_registration import register_configs

    try:
        from growlab.data import load_data
    except ImportError as err:  # the Flowers102 loader is written elsewhere
        raise SystemExit(f"--data flowers102 needs growlab.data.load_data: {err}") from err
    register_configs()
    with initialize_config_module(config_module="growlab.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["data=flowers102"])
    try:
        data = load_data(cfg.data)
    except (ConfigError, ImportError) as err:  # missing files, or no torchvision loader yet
        raise SystemExit(f"--data flowers102: {err}") from err
    batches = []
    for s in seeds:
        gen = torch.Generator().manual_seed(derived_seed(s, 0))
        idx = torch.randperm(len(data.x_train), generator=gen)
        batches.append(data.x_train[idx[:batch]])
    return batches, data.num_classes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m growlab.norm_study",
        description="Output norm of untrained growlab MLPs vs depth for norm none/batch/layer.",
    )
    p.add_argument("--out", type=Path, default=Path("outputs/norm_study"))
    p.add_argument(
        "--input-dim",
        type=int,
        default=SEED_INPUT_DIM,
        help="dimension of the random input (seed: 3*128*128); ignored for flowers102",
    )
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--max-depth", type=int, default=9)
    p.add_argument("--batch", type=int, default=10, help="batch size (seed: 10)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--n-seeds", type=int, default=5, help="seeds seed..seed+n-1 are averaged")
    p.add_argument("--num-classes", type=int, default=102, help="ignored for flowers102")
    p.add_argument("--data", choices=("random", "flowers102"), default="random")
    p.add_argument(
        "--zero-bias",
        action="store_true",
        help="zero every Linear bias after init (the seed's suggested no-bias check)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: 1 for small nets)"
    )
    args = p.parse_args(argv)
    for name in ("input_dim", "width", "batch", "n_seeds", "num_classes", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_depth < 0:
        p.error("--max-depth must be at least 0")
    if args.batch < 2:
        p.error("--batch must be at least 2: BatchNorm in train mode needs two samples")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = list(range(args.seed, args.seed + args.n_seeds))
    inputs: list[torch.Tensor] | None = None
    num_classes = args.num_classes
    if args.data == "flowers102":
        inputs, num_classes = flowers_batches(args.batch, seeds)
    start = time.perf_counter()
    rows = measure_output_norms(
        input_dim=args.input_dim,
        width=args.width,
        max_depth=args.max_depth,
        batch=args.batch,
        seeds=seeds,
        num_classes=num_classes,
        inputs=inputs,
        zero_bias=args.zero_bias,
        threads=args.threads,
    )
    elapsed = time.perf_counter() - start
    input_dim = math.prod(inputs[0].shape[1:]) if inputs is not None else args.input_dim

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "norm_study.csv")
    config = {
        "data": args.data,
        "input_dim": input_dim,
        "width": args.width,
        "max_depth": args.max_depth,
        "batch": args.batch,
        "seeds": seeds,
        "num_classes": num_classes,
        "zero_bias": args.zero_bias,
        "mode": "train (BatchNorm uses batch statistics)",
        "output_norm": "Frobenius norm of the (batch, classes) output, as the seed's net(x).norm()",
        "depth": "hidden layers = growlab blocks; depth 0 = Flatten -> Linear(input, classes)",
        "wall_s": round(elapsed, 2),
    }
    (args.out / "norm_study.json").write_text(
        json.dumps({"config": config, "rows": rows}, indent=2)
    )
    title = (
        f"untrained MLPs: input {args.data} dim {input_dim}, width {args.width}, "
        f"batch {args.batch}, {len(seeds)} seeds" + (", zero bias" if args.zero_bias else "")
    )
    plot(rows, args.out / "norm_study.png", title)

    print(title)
    print(format_table(rows))
    print(f"wrote {args.out / 'norm_study.csv'}, norm_study.json, norm_study.png ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
