"""Finding a model's family: the class its `_target_` names, else the one registered under its
`name` (growlab's own are in growlab.growth.model_families, imported here so they are
registered). A family of your own imports `ModelFamily` and `register_family` from here.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import get_class
from omegaconf import OmegaConf

from growlab.config import ConfigError
from growlab.growth import gpt, model_families  # registers mlp, cnn, backbone; gpt
from growlab.growth.family_base import (
    IMAGES,
    SIGNALS,
    TOKENS,
    VECTORS,
    Model,
    ModelFamily,
    StackedBlock,
    register_family,
    registered,
)

__all__ = [
    "IMAGES",
    "SIGNALS",
    "TOKENS",
    "VECTORS",
    "Model",
    "ModelFamily",
    "StackedBlock",
    "family_names",
    "family_of",
    "gpt",
    "model_config",
    "model_families",
    "register_family",
]


def family_names() -> list[str]:
    return sorted(registered())


def family_of(model: Model) -> ModelFamily:
    """The family of a model config: the class its `_target_` names, else the one registered
    under its `name`. An unknown one is a ConfigError naming it and the registered names."""
    name = str(model["name"])
    target = model.get("_target_")
    if target is not None:
        cls = _locate(str(target))
        if cls.name != name:
            raise ConfigError(
                f"model.name={name} but model._target_={target} is family {cls.name}; "
                f"valid: model.name={cls.name}"
            )
        register_family(cls)
        return cls()
    family = registered().get(name)
    if family is None:
        raise ConfigError(
            f"model={name} is not a registered model family; registered: "
            f"{', '.join(family_names())} (a family of your own: model._target_=<module.Class>)"
        )
    return family()


def model_config(node: Any) -> dict[str, Any]:
    """A composed `cfg.model` as a plain dict, completed by its family's schema."""
    model = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    assert isinstance(model, dict)
    return family_of(model).complete(model)


def _locate(target: str) -> type[ModelFamily]:
    try:
        cls = get_class(target)
    except Exception as exc:  # noqa: BLE001 - any import failure is the same refusal
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"model._target_={target} cannot be imported ({reason}); is its package importable "
            "here? e.g. PYTHONPATH=<folder holding it>"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, ModelFamily)):
        raise ConfigError(f"model._target_={target} is not a ModelFamily subclass")
    return cls
