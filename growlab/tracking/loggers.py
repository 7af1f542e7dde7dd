"""Experiment loggers. Local files are the source of truth; a logger only mirrors them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the annotation only: this module stays free of torch at start-up
    from growlab.growth.strategies import GrowthStrategy

log = logging.getLogger(__name__)


class RunLogger(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...

    def finish(self, summary: dict[str, Any]) -> None: ...


class NullLogger:
    def log(self, row: dict[str, Any]) -> None:
        pass

    def finish(self, summary: dict[str, Any]) -> None:
        pass


class SafeLogger:
    """Wraps a logger so that a logging failure is reported once and never stops training.

    After a failed `log` no more rows are sent, but `finish` is still called so the logger can
    close what it opened (e.g. complete its W&B run file); a failed `finish` is only reported.
    """

    def __init__(self, inner: RunLogger) -> None:
        self.inner: RunLogger | None = inner
        self.logging = True

    def _call(self, method: str, payload: dict[str, Any]) -> bool:
        if self.inner is None:
            return False
        try:
            getattr(self.inner, method)(payload)
            return True
        except Exception as exc:  # noqa: BLE001 - any logging failure must not kill the run
            log.warning(
                "logger %s failed in %s (%s: %s); it gets no more rows in this run",
                type(self.inner).__name__,
                method,
                type(exc).__name__,
                exc,
            )
            return False

    def log(self, row: dict[str, Any]) -> None:
        if self.logging and not self._call("log", row):
            self.logging = False

    def finish(self, summary: dict[str, Any]) -> None:
        self._call("finish", summary)
        self.inner = None


def make_logger(cfg: Any, run_dir: Path, strategy: GrowthStrategy | None = None) -> SafeLogger:
    """The run's logger; `strategy`: the job's, whose stage plan W&B steps follow (None: built)."""
    name = cfg.logger.name
    if name == "none":
        return SafeLogger(NullLogger())
    try:
        from growlab.tracking import wandb_logger
    except ImportError as exc:
        log.warning("logger=%s unavailable (%s); continuing without it", name, exc)
        return SafeLogger(NullLogger())
    try:
        return SafeLogger(wandb_logger.WandbLogger(cfg, run_dir, strategy))
    except Exception as exc:  # noqa: BLE001
        log.warning("logger=%s could not start (%s); continuing without it", name, exc)
        return SafeLogger(NullLogger())
