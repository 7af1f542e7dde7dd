"""Per-stage checkpoints that reload into the same architecture, and the resumable `last` one."""

from __future__ import annotations

import random
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from growlab.engine.files import atomic_writer
from growlab.growth.nets import GrowableNet, build_network

LAST = "last.pt"


def stage_path(run_dir: Path, stage: int) -> Path:
    return run_dir / "checkpoints" / f"stage_{stage:02d}.pt"


def _save(obj: dict[str, Any], path: Path) -> None:
    with atomic_writer(path) as f:
        torch.save(obj, f)


def save_weights(net: GrowableNet, path: Path) -> None:
    _save({"arch": net.arch, "state_dict": net.state_dict()}, path)


def load_network(path: Path, map_location: str | torch.device = "cpu") -> GrowableNet:
    """Rebuild the architecture recorded in a checkpoint and load its weights."""
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    net = build_network(ckpt["arch"])
    net.load_state_dict(ckpt["state_dict"] if "state_dict" in ckpt else ckpt["model"])
    return net


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "shuffle": generator.get_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["shuffle"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def snapshot(value: Any) -> Any:
    """A copy that training cannot change, in host memory: tensors copied to the CPU (so the
    writer thread never touches the GPU, where a CUDA graph may be capturing), containers
    rebuilt (a state dict keeps its type and `_metadata`), everything else (numbers, strings,
    tuples of fresh RNG states) shared. Several times cheaper than copy.deepcopy."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        out = type(value)()
        for key, item in value.items():
            out[key] = snapshot(item)
        if hasattr(value, "_metadata"):  # made fresh by each state_dict() call: shared
            out._metadata = value._metadata  # type: ignore[attr-defined]
        return out
    if isinstance(value, list):
        return [snapshot(item) for item in value]
    return value


class BackgroundWriter:
    """Writes checkpoints on a background thread, so the next epoch trains while one is written.

    The payload is copied first (training goes on updating the tensors it refers to). At most
    one write is in flight, and each is atomic, so a crash at any moment leaves the previous
    complete file. `wait()` returns once the last write is on disk and re-raises its error;
    call it before writing anything that must not get ahead of the checkpoint.
    """

    def __init__(self, pool: ThreadPoolExecutor | None = None) -> None:
        """`pool`: a one-thread pool shared with other writers (a stack's replicas), which its
        owner shuts down; by default the writer has its own."""
        self._own = pool is None
        self._pool = pool or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="growlab-checkpoint"
        )
        self._pending: Future[None] | None = None

    def save(self, payload: dict[str, Any], path: Path, fresh: tuple[str, ...] = ()) -> None:
        """`fresh`: keys whose values the caller made for this payload and never changes
        (they are written as they are, not copied)."""
        self.wait()
        copied = {k: v if k in fresh else snapshot(v) for k, v in payload.items()}
        self._pending = self._pool.submit(_save, copied, path)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._own:
                self._pool.shutdown()


def load_last(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "checkpoints" / LAST
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
