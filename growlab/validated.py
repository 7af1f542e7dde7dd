"""Validation once per job: a sweeper that validated a job's config hands the result to the job.

The sweeper validates every job before the first starts (`validate_for_jobs`); a job then asks
`validated(cfg)`, which validates unless this process's sweeper already validated exactly this
config, environment included. "Exactly" is the key: the config outside `hydra`, resolved, as
JSON. A config whose values differ in any way (a `${...}` that resolves otherwise when the job
runs, a job composed elsewhere), a job launched alone (a single run, a SLURM task in its own
process) or one whose sweep checked only what a remote job can be refused for
(`environment=False`) finds no key and is validated in full. A key is used once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from growlab.growth.strategies import GrowthStrategy
from growlab.validation import validate

# config key -> the strategy its validation built, for a job of the sweep in this process.
_VALIDATED: dict[str, GrowthStrategy] = {}


def config_key(cfg: Any) -> str | None:
    """A digest of the resolved config outside `hydra`; None when it cannot be resolved now."""
    try:
        body = {str(k): _plain(cfg, k) for k in cfg if k != "hydra"}
        text = json.dumps(body, sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 -- no key means a full validation, never a skipped one
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(cfg: Any, key: Any) -> Any:
    node = cfg[key]
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    return node


def start_sweep() -> None:
    """Forget keys of an earlier sweep of this process (a job's environment may have changed)."""
    _VALIDATED.clear()


def validate_for_jobs(cfg: Any, environment: bool) -> None:
    """The sweeper's check of one job; with `environment` the job will not repeat it."""
    strategy = validate(cfg, environment=environment)
    key = config_key(cfg) if environment else None
    if key is not None:
        _VALIDATED[key] = strategy


def validated(cfg: Any) -> GrowthStrategy:
    """The job's strategy, its config validated once: by this process's sweeper when it
    validated exactly this config, else now (raises ConfigError)."""
    key = config_key(cfg)
    strategy = _VALIDATED.pop(key, None) if key is not None else None
    return strategy if strategy is not None else validate(cfg)
