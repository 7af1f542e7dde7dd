"""Function-preserving width growth of a transformer (`strategy=widen-lm`, `model=gpt`):
HyperCloning / staged-training style duplication of the embedding width, the heads and the
MLP hidden size, by an integer factor k = strategy.final_width / model.width in one growth.

Every activation of width C (the residual stream, attention values, the MLP hidden units)
becomes k copies of itself, [a, a, ...]. A layer writing a duplicated activation has its rows
repeated; a layer reading one has its columns repeated and divided by k, so it sums to the same
value. LayerNorm over the widened stream sees k copies of every feature: the same mean and
variance, so with its gain and shift repeated it outputs k copies of what it did. Attention:
by default the number of heads is multiplied by k (the copies are new heads, the head dimension
and so the softmax temperature 1/sqrt(d) unchanged); `strategy.keep_heads=true` keeps the heads
and multiplies the head dimension, and then the queries are scaled by 1/sqrt(k): q'.k' = k q.k
over a head dimension k d, whose temperature 1/sqrt(k d) would otherwise sharpen the softmax.
Every logit is kept (to float rounding). The copies stay equal under training unless something
breaks the symmetry (dropout), as in the papers, which add noise or train further.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from growlab.config import ConfigError
from growlab.growth.gpt import TransformerBlock
from growlab.growth.nets import GrowableNet
from growlab.growth.operators import OperatorBase
from growlab.growth.widening import Moved


@dataclass
class Widening:
    """A widening by `k`; `heads`: the heads before; `keep_heads`: multiply the head dim."""

    k: int
    heads: int
    keep_heads: bool

    def copies(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        """k copies of a duplicated activation's entries along `dim`: [t, t, ...]."""
        return torch.cat([t] * self.k, dim)

    def head_copies(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        """Like `copies` for an activation laid out by heads (queries, keys, values, the
        attention output): new heads, or each head's dimension repeated."""
        if not self.keep_heads:
            return self.copies(t, dim)
        dim = dim % t.dim()
        by_head = t.unflatten(dim, (self.heads, -1))
        return torch.cat([by_head] * self.k, dim + 1).flatten(dim, dim + 1)

    def reads(self, t: torch.Tensor, dim: int, heads: bool = False) -> torch.Tensor:
        """Weights reading a duplicated activation along `dim`: repeated and divided by k."""
        return (self.head_copies(t, dim) if heads else self.copies(t, dim)) / self.k

    def qkv(self, t: torch.Tensor) -> torch.Tensor:
        """The qkv layer's rows (or bias): queries, keys and values each as heads, the queries
        scaled by 1/sqrt(k) when the head dimension grows."""
        q, k, v = (self.head_copies(z, 0) for z in t.chunk(3, 0))
        if self.keep_heads:
            q = q / math.sqrt(self.k)
        return torch.cat([q, k, v], 0)


Rule = Callable[[Widening, torch.Tensor], torch.Tensor]

# Parameter (by its name's ending) -> its widened value.
RULES: dict[str, Rule] = {
    "stem.tok.weight": lambda w, t: w.copies(t, 1),
    "stem.pos.weight": lambda w, t: w.copies(t, 1),
    "ln1.weight": lambda w, t: w.copies(t, 0),
    "ln1.bias": lambda w, t: w.copies(t, 0),
    "ln2.weight": lambda w, t: w.copies(t, 0),
    "ln2.bias": lambda w, t: w.copies(t, 0),
    "attn.qkv.weight": lambda w, t: w.qkv(w.reads(t, 1)),
    "attn.qkv.bias": lambda w, t: w.qkv(t),
    "attn.proj.weight": lambda w, t: w.copies(w.reads(t, 1, heads=True), 0),
    "attn.proj.bias": lambda w, t: w.copies(t, 0),
    "mlp.fc.weight": lambda w, t: w.copies(w.reads(t, 1), 0),
    "mlp.fc.bias": lambda w, t: w.copies(t, 0),
    "mlp.proj.weight": lambda w, t: w.copies(w.reads(t, 1), 0),
    "mlp.proj.bias": lambda w, t: w.copies(t, 0),
    "head.ln.weight": lambda w, t: w.copies(t, 0),
    "head.ln.bias": lambda w, t: w.copies(t, 0),
    "head.out.weight": lambda w, t: w.reads(t, 1),
}


def widened_value(widening: Widening, name: str, value: torch.Tensor) -> torch.Tensor:
    for ending, rule in RULES.items():
        if name.endswith(ending):
            return rule(widening, value)
    raise ConfigError(f"widen-lm cannot widen the parameter {name}; only model=gpt's own blocks")


@dataclass
class DuplicateWidth(OperatorBase):
    """Multiplies a GPT's width by duplication (the module docstring says how)."""

    preserves_function: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...] | None] = ("gpt",)
    keep_heads: bool = False

    @torch.no_grad()
    def widen(self, net: GrowableNet, width: int) -> tuple[Moved, Widening]:
        """Rebuild `net` at `width` with its function, in place; old parameter -> new one."""
        model = net.arch["model"]
        bad = [i for i, b in enumerate(net.blocks) if type(b) is not TransformerBlock]
        if bad:
            raise ConfigError(f"widen-lm widens transformer blocks only; blocks {bad} are not")
        widening = Widening(width // model["n_embd"], int(model["n_head"]), self.keep_heads)
        heads = widening.heads if self.keep_heads else widening.heads * widening.k
        arch = dict(net.arch)
        arch["model"] = {**model, "n_embd": width, "width": width, "n_head": heads}
        arch["blocks"] = [{**spec, "in": width, "out": width} for spec in net.arch["blocks"]]
        wider = GrowableNet(arch).to(next(net.parameters()).device)
        old = dict(net.named_parameters())
        moved: Moved = {}
        for name, param in wider.named_parameters():
            param.copy_(widened_value(widening, name, old[name]))
            moved[old[name]] = param
        net.arch = wider.arch
        net.stem, net.blocks, net.head = wider.stem, wider.blocks, wider.head
        return moved, widening
