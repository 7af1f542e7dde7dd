"""Mirror a run's records to Weights & Biases, never at the run's expense.

The run directory stays the source of truth: every metrics.jsonl row is passed to `log` and
the final summary to `finish`. The W&B run lives inside the run directory (`run_dir/wandb/`),
its id is a hash of the run directory's path and it is opened with `resume="allow"`, so a
requeued or resumed job continues the same W&B run. `logger.mode=auto` goes online only when
credentials exist and the server answers; otherwise (or when the online start fails or takes
longer than `logger.init_timeout_s`) the run is logged offline, to be `wandb sync`ed later.
A resumed offline run writes a second `offline-run-*-<id>` folder with the same id; sync the
folders oldest first with `wandb sync --append` so the second continues the first.

How rows map to W&B keys (`wandb_row`): every numeric field of a row becomes
`<event>/<field>` (nested dicts such as `shock` flatten to `growth/shock/acc_before`; booleans
become 0/1; strings and nulls are skipped). Step metrics: `global_epoch` for `epoch/*`,
`stage` for `growth/*` and `stage/*`, and `depth` for `depth/*` (stage accuracies and size
logged against depth, so W&B charts accuracy against depth directly).
"""

from __future__ import annotations

import hashlib
import logging
import netrc
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import OmegaConf

from growlab.growth.strategies import GrowthStrategy, build_strategy, stage_plan

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.wandb.ai"
# Stage-level fields that are also logged against depth.
BY_DEPTH = ("test_acc", "val_acc", "test_loss", "val_loss", "params_total", "flops_per_sample")
OFFLINE_START_S = 2.0  # what an offline wandb.init typically takes
STEP_METRICS = {"epoch": "global_epoch", "growth": "stage", "stage": "stage", "depth": "depth"}


# ---- where and how to log ----------------------------------------------------------------
def base_url(env: Any = os.environ) -> str:
    return str(env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def has_credentials(env: Any = os.environ) -> bool:
    """WANDB_API_KEY is set, or a netrc file holds an entry for the W&B API host."""
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(base_url(env)).hostname or ""
    home = Path(env.get("HOME") or Path.home())
    candidates = [env.get("NETRC")] if env.get("NETRC") else [home / ".netrc", home / "_netrc"]
    for path in candidates:
        try:
            if Path(path).is_file() and netrc.netrc(str(path)).authenticators(host):
                return True
        except (OSError, netrc.NetrcParseError):
            continue
    return False


def resolve_mode(requested: str, env: Any = os.environ) -> tuple[str, str | None]:
    """The W&B mode to use and, when auto chose offline, the reason to log once."""
    env_mode = str(env.get("WANDB_MODE") or "").lower()
    disabled_env = str(env.get("WANDB_DISABLED") or "").lower() in ("1", "true", "yes")
    if requested == "disabled" or env_mode == "disabled" or disabled_env:
        return "disabled", None
    if env_mode in ("offline", "dryrun"):
        return "offline", None
    if requested in ("online", "offline"):
        return requested, None
    if has_credentials(env):
        return "online", None
    host = urlparse(base_url(env)).hostname
    return "offline", f"no credentials (WANDB_API_KEY or a netrc entry for {host})"


def server_answers(url: str, timeout: float) -> bool:
    """Any HTTP answer (even an error status) within `timeout` seconds counts as reachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - W&B API host
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def run_id(run_dir: Path) -> str:
    """Stable for a run directory, so a resumed or requeued job continues the same W&B run."""
    return hashlib.sha1(os.path.realpath(run_dir).encode()).hexdigest()[:16]


def run_group(cfg: Any, run_dir: Path) -> str:
    """logger.group, else the Hydra sweep directory's name (the run directory's for one run)."""
    if cfg.logger.get("group"):
        return str(cfg.logger.group)
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return Path(hydra_cfg.sweep.dir).name
        return Path(hydra_cfg.runtime.output_dir).name
    except (ImportError, ValueError):  # no Hydra job running (e.g. run_job called directly)
        return Path(os.path.realpath(run_dir)).parent.name


def run_name(cfg: Any) -> str:
    return f"{_text(cfg.strategy.name)}-d{cfg.depth}-s{cfg.seed}"


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))  # config enums hold their value


def run_tags(cfg: Any) -> list[str]:
    tags = [_text(cfg.strategy.name), _text(cfg.model.name), _text(cfg.data.name)]
    tags += [_text(t) for t in cfg.logger.get("tags") or []]
    return list(dict.fromkeys(t[:64] for t in tags if t))


# ---- rows to W&B keys --------------------------------------------------------------------
def _flatten(prefix: str, row: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in row.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            _flatten(name, value, out)
        elif isinstance(value, bool):
            out[name] = int(value)
        elif isinstance(value, int | float):
            out[name] = value


def epochs_before(cfg: Any, strategy: GrowthStrategy | None = None) -> list[int]:
    """Epochs run before each stage starts, so a row's global epoch survives a resume
    (`strategy`: the run's; None: built from the config)."""
    if strategy is None:
        strategy = build_strategy(cfg.strategy)
    totals, done = [], 0
    for plan in stage_plan(strategy, cfg):
        totals.append(done)
        done += plan.epochs
    return totals


def wandb_row(row: dict[str, Any], offsets: list[int]) -> dict[str, Any]:
    event = str(row.get("event", "event"))
    fields = {k: v for k, v in row.items() if k != "event"}
    out: dict[str, Any] = {}
    if event == "epoch":
        stage = int(row["stage"])
        out["global_epoch"] = (offsets[stage] if stage < len(offsets) else 0) + row["epoch"]
    elif "stage" in row and "depth" in row:
        out["stage"], out["depth"] = fields.pop("stage"), fields.pop("depth")
    _flatten(event, fields, out)
    if event == "stage":
        for key in BY_DEPTH:
            if isinstance(row.get(key), int | float):
                out[f"depth/{key}"] = row[key]
    return out


def summary_items(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's scalar fields (the per-stage list is already in the history)."""
    return {
        k: v
        for k, v in summary.items()
        if k != "stages" and (v is None or isinstance(v, str | int | float | bool))
    }


# ---- the logger ----------------------------------------------------------------------------
class WandbLogger:
    open_runs = 0  # runs of this process not finished yet

    def __init__(self, cfg: Any, run_dir: Path, strategy: GrowthStrategy | None = None) -> None:
        import wandb

        self.wandb = wandb
        self.offsets = epochs_before(cfg, strategy)
        self.timeout = float(cfg.logger.get("init_timeout_s") or 10.0)
        requested = _text(cfg.logger.mode)
        mode, reason = resolve_mode(requested)
        if reason:
            log.info("W&B: %s; logging offline to %s/wandb (`wandb sync` later)", reason, run_dir)
        self.init_kwargs: dict[str, Any] = {
            "project": cfg.logger.project,
            "entity": cfg.logger.get("entity") or None,
            "group": run_group(cfg, run_dir),
            "job_type": _text(cfg.strategy.name),
            "name": run_name(cfg),
            "tags": run_tags(cfg),
            "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
            "id": run_id(run_dir),
            "resume": "allow",
            "dir": str(run_dir),
            "reinit": "create_new",
        }
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.run = self._start()
        WandbLogger.open_runs += 1
        for step in dict.fromkeys(STEP_METRICS.values()):
            self.run.define_metric(step)
        for prefix, step in STEP_METRICS.items():
            self.run.define_metric(f"{prefix}/*", step_metric=step)

    def _init(self, mode: str, **settings: Any) -> Any:
        return self.wandb.init(
            mode=mode, settings=self.wandb.Settings(quiet=True, **settings), **self.init_kwargs
        )

    def _start(self) -> Any:
        if self.mode != "online":
            return self._init(self.mode)
        started = time.monotonic()
        url = base_url()
        if not server_answers(url, timeout=min(3.0, self.timeout / 3)):
            log.warning("W&B: %s did not answer; logging offline (`wandb sync` later)", url)
            self.mode = "offline"
            return self._init("offline")
        # Leave time for the offline start, so the fallback completes within the timeout.
        left = max(1.0, self.timeout - OFFLINE_START_S - (time.monotonic() - started))
        try:
            return self._init("online", init_timeout=left)
        except Exception as exc:  # noqa: BLE001 - any online failure falls back to offline
            log.warning("W&B online start failed (%s); logging offline instead", exc)
            self._teardown()
            self.mode = "offline"
            return self._init("offline")

    def _teardown(self) -> None:
        try:
            self.wandb.teardown()
        except Exception as exc:  # noqa: BLE001
            log.debug("wandb.teardown failed: %s", exc)

    def log(self, row: dict[str, Any]) -> None:
        self.run.log(wandb_row(row, self.offsets))

    def finish(self, summary: dict[str, Any]) -> None:
        try:
            self.run.summary.update(summary_items(summary))
            self.run.finish(exit_code=0 if summary.get("status") == "completed" else 1)
        finally:
            WandbLogger.open_runs -= 1
            # finish() alone can return before the run file is complete: wait for the service,
            # once no other run of this process (a stack of seeds) still logs through it.
            if WandbLogger.open_runs == 0:
                self._teardown()
