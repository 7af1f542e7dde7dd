"""A stack of replicas trained as one network with a replica axis: the replicas' parameters and
optimizer state stacked (growlab.engine.stacking.state), one forward and backward for all of
them (forward.py; the epoch is growlab.engine.training's, on a replica_axis.Stack), the results
written back into each replica's own network."""

from __future__ import annotations

import torch

from growlab.engine.replica_axis import Stack
from growlab.engine.runners import Member, StageInputs, same
from growlab.engine.stacking.forward import StackedNet
from growlab.engine.stacking.state import StackedState, StackError
from growlab.engine.training import EpochResult, evaluate, train_epoch


class StackRunner:
    def __init__(self, inputs: list[StageInputs]) -> None:
        """Raises StackError when the replicas cannot train the stage as one stack."""
        if len({i.start for i in inputs}) > 1:
            raise StackError("the replicas' frozen prefixes differ")
        if not all(same(i.targets, inputs[0].targets) for i in inputs):
            raise StackError("the replicas train on different data")
        self.inputs = inputs
        # Shared inputs (the data, or a parameter-free reshape of it), or each replica's
        # cached features of its frozen prefix.
        self.per_replica = not all(same(i.inputs, inputs[0].inputs) for i in inputs)
        self.stacked = torch.stack([i.inputs for i in inputs]) if self.per_replica else None

    def train_epoch(self, members: list[Member]) -> list[tuple[EpochResult, EpochResult]]:
        runs = [m.run for m in members]
        lead = runs[0]
        for run in runs:
            # As a solo epoch does: the probe before a growth leaves the net in eval mode,
            # and StackedState writes back the buffers of the modules that train now.
            run.net.train()
        state = StackedState([r.net for r in runs], [r.optimizer for r in runs], lead.cfg.optimizer)
        net = StackedNet(lead.net, state.tensors)
        losses = lead.objective.replica_losses
        generators = [r.generator for r in runs]
        before = [g.get_state() for g in generators]
        try:
            results = train_epoch(
                Stack(net, losses, self.per_replica),
                self.stacked if self.stacked is not None else self.inputs[0].inputs,
                self.inputs[0].targets,
                state.optimizer,
                lead.cfg.train.batch_size,
                generators,
                self.inputs[0].start,
                lead.cfg.train.cuda_graphs,
                lead.cfg.train.steps_per_epoch,
            )
        except Exception as exc:  # e.g. a module vmap cannot batch: each replica goes solo
            for generator, saved in zip(generators, before, strict=True):
                generator.set_state(saved)
            raise StackError(f"{type(exc).__name__}: {exc}") from exc
        state.write_back()
        x_val, y_val = lead.split("val")
        vals = evaluate(
            Stack(net, losses),
            x_val,
            lead.objective.targets(x_val, y_val),
            lead.cfg.train.eval_batch_size,
        )
        return list(zip(results, vals, strict=True))

    def keep(self, rows: list[int]) -> None:
        self.inputs = [self.inputs[i] for i in rows]
        if self.stacked is not None and rows:
            self.stacked = self.stacked[rows]
