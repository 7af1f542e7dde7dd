"""The replicas' weights, buffers and optimizer state as one stack, and back.

Every per-parameter optimizer in torch (SGD, Adam, AdamW, ...) updates each coordinate from
that coordinate's own gradient and state (Adam's `step` is shared by the whole tensor and is
equal across replicas grown in step). So one optimizer over stacked parameters, with the
replicas' states stacked along the same leading dimension, takes for each replica exactly the
step its own optimizer would: the replicas stay independent runs.

The replicas' own networks and optimizers stay the source of truth between epochs (growth,
checkpoints and stage metrics use them); `StackedState` is built from them for an epoch and
`write_back` copies the result back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from growlab.engine.optim import optimizer_factory


class StackError(Exception):
    """The replicas cannot be trained as one stack (the message says why)."""


class StackedState:
    def __init__(
        self, nets: list[nn.Module], optimizers: list[torch.optim.Optimizer], optimizer_cfg: Any
    ) -> None:
        self.nets, self.optimizers = nets, optimizers
        per_net = [dict(net.named_parameters()) for net in nets]
        names = list(per_net[0])
        for params in per_net[1:]:
            if [(n, p.shape) for n, p in params.items()] != [
                (n, per_net[0][n].shape) for n in names
            ]:
                raise StackError("the replicas' networks differ in architecture")
        self.params = {
            n: torch.stack([p[n].detach() for p in per_net]).requires_grad_(
                per_net[0][n].requires_grad
            )
            for n in names
        }
        # Buffers of modules in training mode change (BatchNorm statistics); frozen ones do not.
        template = nets[0]
        self.buffers = {
            n: torch.stack([net.get_buffer(n) for net in nets]) for n, _ in template.named_buffers()
        }
        self.changing_buffers = [
            n for n in self.buffers if template.get_submodule(n.rpartition(".")[0]).training
        ]
        self.optimizer = self._stack_optimizer(per_net, optimizer_cfg)

    @property
    def tensors(self) -> dict[str, torch.Tensor]:
        return {**self.params, **self.buffers}

    def _stack_optimizer(
        self, per_net: list[dict[str, nn.Parameter]], optimizer_cfg: Any
    ) -> torch.optim.Optimizer:
        first = self.optimizers[0]
        if any(len(o.param_groups) != len(first.param_groups) for o in self.optimizers):
            raise StackError("the replicas' optimizers differ in parameter groups")
        name_of = {id(p): n for n, p in per_net[0].items()}
        self.names = [[name_of[id(p)] for p in g["params"]] for g in first.param_groups]
        groups = [
            {
                **{k: v for k, v in g.items() if k != "params"},
                "params": [self.params[n] for n in ns],
            }
            for g, ns in zip(first.param_groups, self.names, strict=True)
        ]
        stacked = optimizer_factory(optimizer_cfg)(groups, lr=first.param_groups[0]["lr"])
        for names in self.names:
            for name in names:
                states = [
                    o.state.get(p[name]) for o, p in zip(self.optimizers, per_net, strict=True)
                ]
                if all(s is None for s in states):
                    continue
                if any(s is None for s in states):
                    raise StackError(f"optimizer state of {name} exists for some replicas only")
                stacked.state[self.params[name]] = _stack_state(name, states)  # type: ignore[arg-type]
        return stacked

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the trained stack into each replica's network and optimizer."""
        for r, (net, optimizer) in enumerate(zip(self.nets, self.optimizers, strict=True)):
            params = dict(net.named_parameters())
            for name, stacked in self.params.items():
                if stacked.requires_grad:
                    params[name].copy_(stacked[r])
            for name in self.changing_buffers:
                net.get_buffer(name).copy_(self.buffers[name][r])
            for names in self.names:
                for name in names:
                    state = self.optimizer.state.get(self.params[name])
                    if state:
                        optimizer.state[params[name]] = {
                            k: _replica_value(v, r, self.params[name]) for k, v in state.items()
                        }


def _stack_state(name: str, states: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in states[0].items():
        values = [s[key] for s in states]
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            out[key] = torch.stack(values)
        elif isinstance(value, torch.Tensor):
            if any(not torch.equal(v, value) for v in values[1:]):
                raise StackError(f"optimizer state {name}.{key} differs between replicas")
            out[key] = value.clone()
        else:
            if any(v != value for v in values[1:]):
                raise StackError(f"optimizer state {name}.{key} differs between replicas")
            out[key] = value
    return out


def _replica_value(value: Any, r: int, param: torch.Tensor) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape == param.shape:
        return value[r].clone()
    return value.clone() if isinstance(value, torch.Tensor) else value
