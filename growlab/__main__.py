"""The one entry point: `python -m growlab [overrides]`, `-m` for a sweep."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from growlab.config import ConfigError, register_configs, validate
from growlab.records import write_json_atomic

log = logging.getLogger("growlab")
register_configs()


def refuse(run_dir: Path, exc: ConfigError, logger: Any = None) -> NoReturn:
    """An invalid configuration: one error line, a failed summary, exit status 2."""
    summary = {"status": "failed", "error": str(exc)}
    write_json_atomic(run_dir / "summary.json", summary)
    if logger is not None:
        logger.finish(summary)
    log.error("invalid configuration: %s", exc)
    raise SystemExit(2) from None


def run_job(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Validate, then run the stage loop; a failure leaves a summary that says so."""
    try:
        validate(cfg)
    except ConfigError as exc:
        refuse(run_dir, exc)

    from growlab.autoencoder import AutoencoderRun
    from growlab.config import Objective
    from growlab.loggers import make_logger
    from growlab.stage_loop import Run

    logger = make_logger(cfg, run_dir)
    run = None
    try:
        reconstruction = Objective(cfg.strategy.objective) is Objective.reconstruction
        run = (AutoencoderRun if reconstruction else Run)(cfg, run_dir, logger)
        return run.run()
    except ConfigError as exc:
        refuse(run_dir, exc, logger)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if run is not None and hasattr(run, "progress"):
            run.status = "failed"
            summary = run.write_summary(error=error)
        else:
            summary = {"status": "failed", "error": error}
            write_json_atomic(run_dir / "summary.json", summary)
        logger.finish(summary)
        raise


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = run_job(cfg, run_dir)
    log.info("run %s finished: %s, test_acc %s", run_dir, summary["status"], summary["test_acc"])
    from growlab.progress import log_sweep_count

    log_sweep_count()
    return summary["test_acc"]


if __name__ == "__main__":
    main()
