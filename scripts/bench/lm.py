"""Target 7: a language model's training steps through growlab against a plain PyTorch loop.

nanoGPT's CPU recipe (experiment=lm_char_baseline: 4 layers, 4 heads, width 128, 64 characters,
batches of 12, Adam at 1e-3) on data=shakespeare_char: growlab's own `train_epoch` on its GPT
(an epoch of `steps` sampled batches) against scripts/bench/lm_plain_loop.py's model and loop,
timed alternately in this process with the same threads; steps per second of each, best of
`repeats` (target: growlab >= 0.9x the plain loop's).
"""

from __future__ import annotations

from typing import Any

import torch

from bench.common import compose_cfg, growlab_net, interleaved, log
from bench.lm_plain_loop import GPT, LR, train_steps
from growlab.data import load_data
from growlab.engine.optim import build_optimizer
from growlab.engine.replica_axis import Solo
from growlab.engine.training import train_epoch
from growlab.growth.lm import LanguageModelling


def bench_lm_steps(device: torch.device, steps: int, repeats: int) -> dict[str, Any]:
    cfg = compose_cfg(["experiment=lm_char_baseline", f"train.steps_per_epoch={steps}"])
    data = load_data(cfg.data).to(device)
    torch.manual_seed(0)
    net = growlab_net(cfg, data, depth=cfg.depth, device=device)
    optimizer = build_optimizer(cfg, net)
    loss = LanguageModelling().loss
    batch = cfg.train.batch_size
    plain = GPT(data.num_classes).to(device)
    plain_optimizer = torch.optim.Adam(plain.parameters(), lr=LR)
    ours, theirs = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    x, y = data.x_train, data.y_train
    graphs = bool(cfg.train.cuda_graphs)  # as a run on this device would

    def growlab_epoch() -> None:
        train_epoch(Solo(net, loss), x, y, optimizer, batch, [ours], None, graphs, steps)

    def plain_loop() -> None:
        train_steps(plain, plain_optimizer, x, y, steps, theirs)

    log(f"lm: {steps} steps through growlab and the plain loop, {repeats} rounds")
    growlab_epoch(), plain_loop()  # warm-up: allocator, optimizer state
    times = interleaved({"growlab": growlab_epoch, "plain": plain_loop}, device, repeats)
    best = {name: min(seconds) for name, seconds in times.items()}
    rates = {name: steps / seconds for name, seconds in best.items()}
    return {
        "steps": steps,
        "threads": torch.get_num_threads(),
        "growlab_steps_per_s": rates["growlab"],
        "plain_steps_per_s": rates["plain"],
        "ratio": rates["growlab"] / rates["plain"],
        "times_s": times,
    }
