"""torchvision architectures as the stem of a growable network (seed 002).

The backbone's own classifier is dropped: the stem ends at the pooled features, the grown
blocks sit between those features and growlab's classifier head. Hubs are unreachable, so
pretrained weights come from a local state_dict file saved from the full torchvision model.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from growlab.config import ConfigError

# Attribute holding each family's classifier, replaced by the identity to expose features.
CLASSIFIER_ATTR = {"resnet": "fc", "alexnet": "classifier", "vgg": "classifier"}


def _classifier_attr(name: str) -> str:
    for prefix, attr in CLASSIFIER_ATTR.items():
        if name.startswith(prefix):
            return attr
    raise ConfigError(
        f"model.backbone={name} is not supported; valid choices: resnet18, resnet34, resnet50, "
        "alexnet, vgg11, vgg16 (families: " + ", ".join(CLASSIFIER_ATTR) + ")"
    )


class BackboneStem(nn.Module):
    """Resize to `input_size`, repeat a grey channel to RGB, run the torchvision features."""

    def __init__(self, name: str, input_size: int | None, weights: str | None = None) -> None:
        super().__init__()
        attr = _classifier_attr(name)
        try:
            model = torchvision.models.get_model(name, weights=None)
        except ValueError as exc:
            raise ConfigError(f"model.backbone={name}: {exc}") from None
        if weights is not None:
            path = Path(weights).expanduser()
            if not path.exists():
                raise ConfigError(f"model.weights={weights}: no such file")
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        setattr(model, attr, nn.Identity())
        self.body = model
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        return torch.flatten(self.body(x), 1)


@torch.no_grad()
def feature_dim(stem: BackboneStem, input_shape: tuple[int, ...]) -> int:
    was_training = stem.training
    stem.eval()
    dim = stem(torch.zeros(1, *input_shape)).shape[1]
    stem.train(was_training)
    return int(dim)
