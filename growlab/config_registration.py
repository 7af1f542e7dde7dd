"""growlab's schemas and resolvers made known to Hydra (`register_configs`, once per process)."""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from growlab.config import SCHEMAS, common_data_keys
from growlab.engine.outcome import direction
from growlab.engine.run_directory.result_identity import fingerprint, result_config

FOLDER_FINGERPRINT_CHARS = 8


def run_fingerprint(*, _root_: Any) -> str:
    """`${growlab_fingerprint:}`: the start of the run's config fingerprint, which names its
    folder in a sweep (conf/hydra/default.yaml; growlab.engine.run_directory.result_identity)."""
    return fingerprint(result_config(_root_))[:FOLDER_FINGERPRINT_CHARS]


def register_configs() -> None:
    """Schemas are root configs, not group options, so `--help` lists only real choices; each
    YAML option names its schema (`- /schema_model_cnn@_here_`). Also the resolvers that give
    Optuna the direction of `return_metric` (see growlab.__main__.cli) and a run its folder."""
    OmegaConf.register_new_resolver("growlab_direction", direction, replace=True)
    OmegaConf.register_new_resolver("growlab_fingerprint", run_fingerprint, replace=True)
    cs = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        cs.store(name=name, node=node)
    cs.store(name="data_common", node=common_data_keys())
