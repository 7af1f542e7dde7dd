"""growlab's model families: an MLP, a CNN (Conv2d on images, Conv1d on 1-D signals) and a
torchvision backbone as the stem. Each registers itself by name (growlab.growth.family_base);
a new family is a module like this one, anywhere, plus a model YAML."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from growlab.config import BackboneConfig, CNNConfig, ConfigError
from growlab.growth.blocks import BlockSpec
from growlab.growth.family_base import IMAGES, SIGNALS, Model, ModelFamily, register_family


@register_family
class MLP(ModelFamily):
    """Flatten, linear blocks, a linear head: takes any data (ModelFamily's defaults)."""

    name: ClassVar[str] = "mlp"


@register_family
class CNN(ModelFamily):
    """Conv blocks (channels = model.width), global average pooling, a linear head. Images
    (C, H, W) get Conv2d; 1-D signals (C, L), or (L,) given one channel, get Conv1d."""

    name: ClassVar[str] = "cnn"
    data: ClassVar[str] = "image or 1-D signal"
    schema: ClassVar[type] = CNNConfig

    def accepts(self, rank: int) -> bool:
        return rank in (SIGNALS, IMAGES)

    def arch_model(self, model: Model, input_shape: tuple[int, ...]) -> dict[str, Any]:
        # (L,) or (C, L): Conv1d; (C, H, W): Conv2d.
        return {**model, "spatial_dims": max(len(input_shape) - 1, 1)}

    def input_width(self, model: Model, input_shape: tuple[int, ...]) -> int:
        return 1 if len(input_shape) == 1 else input_shape[0]

    def block_spec(self, model: Model, d_in: int, d_out: int) -> BlockSpec:
        return {"type": "block", "op": "conv", "in": d_in, "out": d_out}

    def build_stem(self, model: Model, input_shape: tuple[int, ...], load: bool) -> nn.Module:
        # A 1-D signal without a channel axis gets one: (N, L) -> (N, 1, L).
        return nn.Unflatten(1, (1, input_shape[0])) if len(input_shape) == 1 else nn.Identity()

    def build_head(self, model: Model, width: int, outputs: int) -> nn.Module:
        one_d = model.get("spatial_dims", 2) == 1
        pool = nn.Sequential(
            nn.AdaptiveAvgPool1d(1) if one_d else nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        return nn.Sequential(pool, nn.Linear(width, outputs))


@register_family
class Backbone(ModelFamily):
    """A torchvision network's pooled features as the stem (seed 002), linear blocks after it.

    torchvision costs a second to import, so growlab.growth.backbones is imported only when a
    backbone is built or checked, not when the family registers."""

    name: ClassVar[str] = "backbone"
    data: ClassVar[str] = "image"
    schema: ClassVar[type] = BackboneConfig

    def accepts(self, rank: int) -> bool:
        return rank == IMAGES

    def check(self, model: Model) -> None:
        # torchvision (about half a second) only when a backbone is asked for: start-up.
        import torchvision

        from growlab.growth.backbones import CLASSIFIER_ATTR

        name = str(model["backbone"])
        known = set(torchvision.models.list_models(module=torchvision.models))
        prefixes = tuple(CLASSIFIER_ATTR)
        if name not in known or not name.startswith(prefixes):
            valid = sorted(m for m in known if m.startswith(prefixes))
            raise ConfigError(
                f"model.backbone={name} is not supported; valid choices: {', '.join(valid)}"
            )

    def input_width(self, model: Model, input_shape: tuple[int, ...]) -> int:
        from growlab.growth.backbones import feature_dim

        return feature_dim(self.build_stem(model, input_shape, load=False), input_shape)

    def build_stem(self, model: Model, input_shape: tuple[int, ...], load: bool) -> nn.Module:
        from growlab.growth.backbones import BackboneStem

        weights = model.get("weights") if load else None
        return BackboneStem(model["backbone"], model["input_size"], weights)

    def stem_trains(self, model: Model) -> bool:
        return not model.get("freeze_backbone", True)
