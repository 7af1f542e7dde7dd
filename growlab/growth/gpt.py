"""A decoder-only transformer as a growable network: `model=gpt` (nanoGPT's model.py, in
growlab's stem / blocks / head shape).

The stem embeds the token ids and adds learned position embeddings; each hidden block is a
pre-LayerNorm transformer block, x + attn(ln1(x)) then x + mlp(ln2(x)), with causal multi-head
self-attention (torch's scaled_dot_product_attention); the head is a final LayerNorm and a
linear map to the vocabulary (untied from the embedding). Growth inserts blocks: the network's
depth is its number of layers (`depth`, which `model.n_layer` mirrors). Weights start as
nanoGPT's: normal(0, 0.02), output projections 0.02 / sqrt(2 n_layer), zero biases.

Every module says how it runs on a stack of replicas (`forward_stacked`,
growlab.engine.stacking.forward): the linear layers as batched matmuls over (R, B*T, C).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from growlab.config import ConfigError, ModelConfig
from growlab.growth.blocks import BlockSpec, RunChild
from growlab.growth.family_base import TOKENS, Model, ModelFamily, register_family


@dataclass
class GPTConfig(ModelConfig):
    """model=gpt's keys; `width` is the embedding width (conf/model/gpt.yaml: ${.n_embd})."""

    n_layer: int | None = None  # the number of blocks: the run's `depth` (the YAML's ${depth})
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    bias: bool = False
    # The vocabulary, from the data (filled in when the architecture is made).
    vocab_size: int | None = None


def _init(module: nn.Module, n_layer: int) -> None:
    """nanoGPT's initialisation of a module's linear and embedding layers."""
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Linear | nn.Embedding):
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj") else 0.02
            nn.init.normal_(sub.weight, 0.0, std)
            if isinstance(sub, nn.Linear) and sub.bias is not None:
                nn.init.zeros_(sub.bias)


def _layers(model: Model) -> int:
    return int(model.get("n_layer") or 1)


class TokenStem(nn.Module):
    """Token embedding plus learned position embedding (then dropout): (B, T) ids -> (B, T, C)."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.tok = nn.Embedding(int(model["vocab_size"]), model["n_embd"])
        self.pos = nn.Embedding(model["block_size"], model["n_embd"])
        self.drop = nn.Dropout(model["dropout"])
        _init(self, _layers(model))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[-1], device=idx.device)
        return self.drop(self.tok(idx) + self.pos(positions))

    def forward_stacked(self, child: RunChild, idx: torch.Tensor) -> torch.Tensor:
        r, t = idx.shape[0], idx.shape[-1]
        positions = torch.arange(t, device=idx.device).expand(r, t)
        return child("drop", child("tok", idx) + child("pos", positions).unsqueeze(1))


class CausalSelfAttention(nn.Module):
    def __init__(self, model: Model) -> None:
        super().__init__()
        c, bias = model["n_embd"], model["bias"]
        self.n_head = int(model["n_head"])
        self.qkv = nn.Linear(c, 3 * c, bias=bias)
        self.proj = nn.Linear(c, c, bias=bias)
        self.p = float(model["dropout"])
        self.drop = nn.Dropout(self.p)

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """(N, T, 3C) queries, keys and values -> (N, T, C), each position seeing only itself
        and earlier positions."""
        n, t, c3 = qkv.shape
        c = c3 // 3
        d = c // self.n_head
        q, k, v = (z.view(n, t, self.n_head, d).transpose(1, 2) for z in qkv.split(c, 2))
        p = self.p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return y.transpose(1, 2).reshape(n, t, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.attend(self.qkv(x))))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        c, bias = model["n_embd"], model["bias"]
        self.ln1 = nn.LayerNorm(c, bias=bias)
        self.attn = CausalSelfAttention(model)
        self.ln2 = nn.LayerNorm(c, bias=bias)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc", nn.Linear(c, 4 * c, bias=bias))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("proj", nn.Linear(4 * c, c, bias=bias))
        self.mlp.add_module("drop", nn.Dropout(model["dropout"]))
        _init(self, _layers(model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))

    def forward_stacked(self, child: RunChild, h: torch.Tensor) -> torch.Tensor:
        """h: (R, B, T, C); the linear layers see (R, B*T, C), attention (R*B, T, C)."""
        r, b, t, c = h.shape
        x = h.reshape(r, b * t, c)
        qkv = child("attn.qkv", child("ln1", x))
        y = self.attn.attend(qkv.reshape(r * b, t, 3 * c)).reshape(r, b * t, c)
        x = x + child("attn.drop", child("attn.proj", y))
        x = x + child("mlp", child("ln2", x))
        return x.reshape(r, b, t, c)


class LMHead(nn.Module):
    """Final LayerNorm and the linear map to the vocabulary: (B, T, C) -> (B, T, V) logits."""

    def __init__(self, model: Model, width: int, outputs: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width, bias=model["bias"])
        self.out = nn.Linear(width, outputs, bias=False)
        _init(self, _layers(model))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.ln(h))

    def forward_stacked(self, child: RunChild, h: torch.Tensor) -> torch.Tensor:
        r, b, t, c = h.shape
        return child("out", child("ln", h.reshape(r, b * t, c))).reshape(r, b, t, -1)


@register_family
class GPT(ModelFamily):
    name: ClassVar[str] = "gpt"
    data: ClassVar[str] = "token-id"
    schema: ClassVar[type] = GPTConfig

    def accepts(self, rank: int) -> bool:
        return rank == TOKENS

    def check(self, model: Model) -> None:
        c, heads = model["n_embd"], model["n_head"]
        if heads < 1 or c < 1 or c % heads:
            raise ConfigError(
                f"model.n_embd={c} is not divisible by model.n_head={heads}; valid: n_head "
                f"among the divisors of n_embd ({', '.join(_divisors(c))})"
            )
        if model["width"] != c:
            raise ConfigError(
                f"model.width={model['width']} but model.n_embd={c}: for model=gpt the width "
                "is the embedding width; set model.n_embd"
            )
        if model["block_size"] < 1:
            raise ConfigError(f"model.block_size={model['block_size']}; valid: an integer >= 1")

    def arch_model(self, model: Model, input_shape: tuple[int, ...]) -> dict[str, Any]:
        if input_shape[-1] > model["block_size"]:
            raise ConfigError(
                f"the data's windows are {input_shape[-1]} tokens, more than "
                f"model.block_size={model['block_size']} positions"
            )
        return dict(model)

    def bind_outputs(self, model: Model, outputs: int) -> dict[str, Any]:
        return {**model, "vocab_size": outputs}

    def input_width(self, model: Model, input_shape: tuple[int, ...]) -> int:
        return int(model["n_embd"])

    def block_spec(self, model: Model, d_in: int, d_out: int) -> BlockSpec:
        return {"type": "block", "op": "transformer", "in": d_in, "out": d_out}

    def build_block(self, spec: BlockSpec, model: Model) -> nn.Module:
        return TransformerBlock(model)

    def build_stem(self, model: Model, input_shape: tuple[int, ...], load: bool) -> nn.Module:
        return TokenStem(model)

    def build_head(self, model: Model, width: int, outputs: int) -> nn.Module:
        return LMHead(model, width, outputs)

    def unstackable(self, model: Model) -> str | None:
        if model["dropout"] > 0:
            return (
                f"model.dropout={model['dropout']}: replicas stacked through vmap cannot draw "
                "their solo runs' dropout masks"
            )
        return None


def _divisors(n: int) -> list[str]:
    return [str(d) for d in range(1, n + 1) if n % d == 0] if n > 0 else []
