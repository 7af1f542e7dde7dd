"""Print text a trained language-model run writes, one character at a time.

    python -m growlab.sample RUN_DIR [--chars 500] [--prompt TEXT] [--temperature 1.0]
                                     [--top-k K] [--seed 0] [--stage N]

The network is the run's stage (default: the last) rebuilt as growlab.evaluate rebuilds it;
each next character is drawn from its softmax (divided by the temperature, cut to the top k)
with a seeded generator, reading at most `model.block_size` characters back. Exits 2 (one
line) when the folder cannot be sampled: not a completed run, or not a language model's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from growlab.cli.evaluate import EXIT_REFUSED, Unusable, load_for_evaluation
from growlab.data.tokens import TokenSplits


@torch.no_grad()
def generate(
    net: torch.nn.Module,
    prompt: torch.Tensor,
    chars: int,
    block_size: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """`prompt` (T,) ids followed by `chars` drawn ones."""
    net.eval()
    generator = torch.Generator().manual_seed(seed)
    ids = prompt.clone()
    for _ in range(chars):
        logits = net(ids[-block_size:].unsqueeze(0))[0, -1] / temperature
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)])
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m growlab.sample",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--chars", type=int, default=500, help="characters to write")
    parser.add_argument("--prompt", default="\n", help="text to start from (default: a newline)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage", type=int, default=None, help="stage index (default: last)")
    args = parser.parse_args(argv)
    if args.chars < 0 or args.temperature <= 0 or (args.top_k is not None and args.top_k < 1):
        parser.error("--chars >= 0, --temperature > 0 and --top-k >= 1 are valid")
    try:
        net, data, _, _ = load_for_evaluation(args.run_dir, args.stage, whole_model=False)
        if not isinstance(data, TokenSplits):
            raise Unusable(f"{args.run_dir} is not a language model's run (data={data.name})")
        unknown = sorted(set(args.prompt) - set(data.vocab))
        if unknown:
            raise Unusable(f"--prompt has characters outside the run's vocabulary: {unknown}")
    except Unusable as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    prompt = data.encode(args.prompt)
    ids = generate(
        net, prompt, args.chars, data.block_size, args.temperature, args.top_k, args.seed
    )
    print(data.decode(ids))
    return 0
