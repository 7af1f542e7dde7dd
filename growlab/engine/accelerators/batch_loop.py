"""The loop over an epoch's mini-batches, replayed as a CUDA graph on a GPU.

A small network's training step is a few dozen kernel launches, so on a GPU an epoch costs the
launches, not the arithmetic (an H200 runs the Fashion-MNIST MLP step in ~0.2 ms of GPU time
behind ~2 ms of launches). With `train.cuda_graphs` (default on), the first batches of an
epoch train eagerly on a side stream (warm-up: optimizer state, library workspaces), the next
full batch's step (forward, loss, backward, optimizer step, the epoch's sums) is captured once
and every further full batch replays it with its indices copied into the captured index
tensor; the last, shorter batch runs eagerly. Every batch is trained exactly once, in order.

Captured steps need an optimizer whose state lives on the GPU (Adam's `capturable`,
growlab.engine.optim), no host synchronisation and fixed shapes; the learning rate is read at
capture, so the graph is captured again each epoch (schedules step between epochs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger("growlab")
WARMUP_BATCHES = 2
Step = Callable[[torch.Tensor], None]


def use_cuda_graphs(enabled: bool, device: torch.device, optimizer: torch.optim.Optimizer) -> bool:
    """Whether an epoch on `device` with this optimizer can be replayed as a CUDA graph."""
    if not enabled or device.type != "cuda":
        return False
    return all(group.get("capturable", True) for group in optimizer.param_groups)


def run_batches(order: torch.Tensor, batch_size: int, step: Step, graphs: bool) -> None:
    """`step(index)` for each mini-batch of `order` ((N,), or (R, N) for a stack), as a CUDA
    graph replay where it can be."""
    n = order.shape[-1]
    full = n // batch_size

    def batch(k: int) -> torch.Tensor:
        return order[..., k * batch_size : (k + 1) * batch_size]

    if not graphs or full <= WARMUP_BATCHES:
        for i in range(0, n, batch_size):
            step(order[..., i : i + batch_size])
        return
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for k in range(WARMUP_BATCHES):
            step(batch(k))
    torch.cuda.current_stream().wait_stream(side)
    index = batch(WARMUP_BATCHES).clone()
    graph = torch.cuda.CUDAGraph()
    try:
        # thread_local: the checkpoint writer's thread may work meanwhile (on host memory).
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            step(index)  # recorded, not run
    except RuntimeError as exc:  # an operation that cannot be captured: train eagerly
        log.warning("CUDA graph capture failed (%s); this epoch trains without it", exc)
        for i in range(WARMUP_BATCHES * batch_size, n, batch_size):
            step(order[..., i : i + batch_size])
        return
    graph.replay()
    for k in range(WARMUP_BATCHES + 1, full):
        index.copy_(batch(k))
        graph.replay()
    if n > full * batch_size:
        step(order[..., full * batch_size :])
