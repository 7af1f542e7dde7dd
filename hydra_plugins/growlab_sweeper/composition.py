"""Hydra composition paid once per distinct choice of config groups, not once per job.

Hydra composes every job of a sweep from scratch (about 0.1 s each). Jobs that pick the same
config groups differ only in value overrides, which Hydra applies after composing; so this
config loader composes each distinct group choice once and applies the remaining overrides to a
copy, then records the job's overrides as Hydra does (`hydra.overrides.task`,
`hydra.job.override_dirname`). tests/test_sweeper.py checks that the result equals Hydra's own
`load_sweep_config` for a range of overrides. Everything else goes to Hydra's loader.
"""

import copy
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, open_dict


class ComposeOncePerGroupChoice:
    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self._master: Any = None
        self._composed: dict[tuple[str, ...], DictConfig] = {}

    def __getattr__(self, name: str) -> Any:
        if name in ("loader", "_master", "_composed"):  # while unpickling
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self) -> dict[str, Any]:
        return {"loader": self.loader, "_master": None, "_composed": {}}  # no cache shipped

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> Any:
        if master_config is not self._master:
            self._master, self._composed = master_config, {}
        repository = self.loader.repository
        parsed = OverridesParser.create(config_loader=self.loader).parse_overrides(
            list(sweep_overrides)
        )
        shape = [
            o for o in parsed if o.is_hydra_override() or repository.group_exists(o.key_or_group)
        ]
        key = tuple(o.input_line for o in shape)
        if key not in self._composed:
            self._composed[key] = self.loader.load_sweep_config(master_config, list(key))
        cfg = copy.deepcopy(self._composed[key])
        ConfigLoaderImpl._apply_overrides_to_config([o for o in parsed if o not in shape], cfg)
        task = [o for o in parsed if not o.is_hydra_override()]
        dirname = cfg.hydra.job.config.override_dirname
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task,
                kv_sep=dirname.kv_sep,
                item_sep=dirname.item_sep,
                exclude_keys=dirname.exclude_keys,
            )
        return cfg
