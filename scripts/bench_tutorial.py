"""Greedy layer-wise MLP training written the way a tutorial does it (baseline for benchmark.py).

The pattern of seed 000 (torchvision Dataset + ToTensor + DataLoader(num_workers=1) built again
for every stage, an `nn.Sequential` rebuilt with one more layer per stage, the old layers frozen,
a fresh Adam per stage, `loss.item()` every batch), on Fashion-MNIST instead of CIFAR-10 and with
a ReLU after every added layer (the seed leaves it out, which collapses the added layers into one
linear map), so the accuracy is comparable with growlab's. Run standalone:

    python scripts/bench_tutorial.py --root ~/.cache/growlab --stages 11 --epochs 1

It prints one JSON line: wall time, final test accuracy and per-stage times.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FashionMNIST

WIDTH = 256
BATCH_SIZE = 250
LR = 1e-4
IN_FEATURES = 28 * 28
NUM_CLASSES = 10


def get_loader(root: str, train: bool) -> DataLoader:
    dataset = FashionMNIST(root, train=train, download=False, transform=transforms.ToTensor())
    return DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=train, num_workers=1)


def base_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(IN_FEATURES, WIDTH), nn.ReLU(), nn.Linear(WIDTH, NUM_CLASSES)
    )


def add_layer(model: nn.Sequential) -> nn.Sequential:
    """Freeze everything but the head, then insert Linear + ReLU before it."""
    *body, head = list(model)
    for layer in body:
        layer.requires_grad_(False)
    new = nn.Linear(WIDTH, WIDTH).to(next(head.parameters()).device)
    return nn.Sequential(*body, new, nn.ReLU(), head)


def train_model(
    model: nn.Module, root: str, epochs: int, device: torch.device
) -> tuple[nn.Module, float]:
    loss_function = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    trainloader = get_loader(root, train=True)
    end_loss = 0.0
    for _ in range(epochs):
        current_loss, batches = 0.0, 0
        for inputs, targets in trainloader:
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            loss = loss_function(model(inputs), targets)
            loss.backward()
            optimizer.step()
            current_loss += loss.item()
            batches += 1
        end_loss = current_loss / max(batches, 1)
    return model, end_loss


@torch.no_grad()
def test_accuracy(model: nn.Module, root: str, device: torch.device) -> float:
    model.eval()
    correct, total = 0, 0
    for inputs, targets in get_loader(root, train=False):
        outputs = model(inputs.to(device))
        correct += int((outputs.argmax(1).cpu() == targets).sum())
        total += targets.shape[0]
    model.train()
    return correct / total


def greedy_layerwise_training(
    root: str, stages: int, epochs: int, device: torch.device, seed: int
) -> dict[str, Any]:
    """Train depth 1, add a layer, train depth 2, ... up to `stages` hidden layers."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    model: nn.Module = base_model().to(device)
    stage_s: list[float] = []
    losses: list[float] = []
    for stage in range(stages):
        t0 = time.perf_counter()
        if stage > 0:
            assert isinstance(model, nn.Sequential)
            model = add_layer(model)
        model, end_loss = train_model(model, root, epochs, device)
        stage_s.append(time.perf_counter() - t0)
        losses.append(end_loss)
    acc = test_accuracy(model, root, device)
    return {
        "wall_s": time.perf_counter() - start,
        "test_acc": acc,
        "stage_s": stage_s,
        "train_loss": losses,
        "device": str(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder holding FashionMNIST/raw")
    parser.add_argument("--stages", type=int, default=11, help="hidden layers at the end")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    result = greedy_layerwise_training(
        args.root, args.stages, args.epochs, torch.device(name), args.seed
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
