"""The LM anchor's plain PyTorch loop: nanoGPT's CPU recipe on growlab's Shakespeare split.

    python scripts/bench/lm_plain_loop.py [--iters 2000] [--seed 0] [--threads N]

A self-contained decoder-only transformer (nanoGPT's model.py: pre-LayerNorm blocks, causal
attention, 4x GELU MLP, learned positions, no biases, nanoGPT's initialisation, an untied head
as growlab's) and a plain loop: 4 layers, 4 heads, width 128, 64 characters, batches of 12
windows drawn at random, Adam at lr 1e-3, no dropout. Only the data comes from growlab (the
same split by play and the same 2048 validation and test windows as data=shakespeare_char), so
its validation loss is what `python -m growlab experiment=lm_char_baseline` should match.
Prints one JSON line: val_loss, test_loss (nats per character), training steps per second.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from growlab.data.sets.shakespeare import ShakespeareCharConfig, shakespeare_char

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH, LR = 4, 4, 128, 64, 12, 1e-3


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(N_EMBD, bias=False)
        self.qkv = nn.Linear(N_EMBD, 3 * N_EMBD, bias=False)
        self.attn_proj = nn.Linear(N_EMBD, N_EMBD, bias=False)
        self.ln2 = nn.LayerNorm(N_EMBD, bias=False)
        self.fc = nn.Linear(N_EMBD, 4 * N_EMBD, bias=False)
        self.mlp_proj = nn.Linear(4 * N_EMBD, N_EMBD, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, 2)
        q, k, v = (z.view(b, t, N_HEAD, c // N_HEAD).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp_proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, N_EMBD)
        self.pos = nn.Embedding(BLOCK, N_EMBD)
        self.blocks = nn.Sequential(*(Block() for _ in range(N_LAYER)))
        self.ln_f = nn.LayerNorm(N_EMBD, bias=False)
        self.head = nn.Linear(N_EMBD, vocab, bias=False)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                std = 0.02 / math.sqrt(2 * N_LAYER) if name.endswith("proj") else 0.02
                nn.init.normal_(module.weight, 0.0, std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        return self.head(self.ln_f(self.blocks(x)))


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    generator: torch.Generator,
) -> float:
    """`steps` Adam steps, each on BATCH windows drawn at random; the last batch's loss."""
    loss = torch.zeros(())
    for _ in range(steps):
        index = torch.randint(len(x), (BATCH,), generator=generator)
        loss = loss_of(model, x[index], y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> float:
    model.eval()
    total = sum(loss_of(model, x[i : i + batch], y[i : i + batch]).double() * len(x[i : i + batch])
                for i in range(0, len(x), batch))  # fmt: skip
    model.train()
    return float(total / len(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="default: torch's")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = shakespeare_char(ShakespeareCharConfig(name="shakespeare_char", block_size=BLOCK))
    torch.manual_seed(args.seed)
    model = GPT(data.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    loss = train_steps(model, optimizer, data.x_train, data.y_train, args.iters, generator)
    seconds = time.perf_counter() - start
    result = {
        "val_loss": evaluate(model, data.x_val, data.y_val),
        "test_loss": evaluate(model, data.x_test, data.y_test),
        "train_loss_last_batch": loss,
        "iters": args.iters,
        "train_s": seconds,
        "steps_per_s": args.iters / seconds,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
