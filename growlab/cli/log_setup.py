"""What a run prints besides growlab's own lines: short numbers, no storage chatter.

Hydra's launchers print each job's overrides, and Optuna's draws are floats at full precision
(`optimizer.lr=0.004430375245218269`); its sweeper prints the best value as repr too. Those
lines are rounded as printed (3 significant digits for a parameter, 4 decimals for the
metric); the recorded configs, summary.json and optimization_results.yaml keep every digit.
Optuna's study set-up (`A new study created in memory ...`, `Study name: ...`, `Storage: ...`)
and alembic's plugin set-up, which Optuna's import triggers, are said at INFO and hidden,
unless `hydra.verbose` asks for more.
"""

from __future__ import annotations

import logging

from growlab.engine.progress import round_numbers

# Loggers whose lines carry a job's overrides or a search's result.
LAUNCH_LOGGERS = (
    "hydra._internal.core_plugins.basic_launcher",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
    "hydra_plugins.growlab_launcher.packing",
)
OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper._impl"
SETUP_LINES = ("Study name:", "Storage:")
# Loggers quiet below WARNING. Optuna sets its own root logger to INFO when imported, so its
# storages (which announce each new study) are set here; `optuna_quiet` sets the root too.
QUIET = ("optuna.storages", "alembic")


class RoundNumbers(logging.Filter):
    """Rounds long numbers in a record's text: a launch line's overrides, Optuna's result."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        metric = text.startswith(("Best value:", "    Values:"))
        if metric and "Params:" in text:  # a Pareto line: metrics, then parameters
            values, params = text.split("Params:", 1)
            rounded = round_numbers(values, metric=True) + "Params:" + round_numbers(params)
        else:
            rounded = round_numbers(text, metric=metric)
        record.msg, record.args = rounded, ()
        return True


class HideSetupLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(SETUP_LINES)


def verbose(args: list[str]) -> bool:
    """`hydra.verbose=true` (or a logger name, a list of them) on the command line."""
    values = [a.split("=", 1)[1] for a in args if a.lstrip("+").startswith("hydra.verbose=")]
    return any(v.strip().lower() not in ("false", "null", "[]", "") for v in values)


def setup_logging(args: list[str], optuna: bool) -> None:
    """Before Hydra starts: loggers set up by name, so they hold whenever their modules load.
    `optuna`: the command line picks Optuna's sweeper (imported now to quiet it)."""
    rounding = RoundNumbers()
    for name in (*LAUNCH_LOGGERS, OPTUNA_SWEEPER):
        logging.getLogger(name).addFilter(rounding)
    if verbose(args):
        return
    logging.getLogger(OPTUNA_SWEEPER).addFilter(HideSetupLines())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    if optuna:
        optuna_quiet()


def optuna_quiet() -> None:
    try:
        import optuna
    except ImportError:
        return  # Hydra says the sweeper is missing
    optuna.logging.set_verbosity(optuna.logging.WARNING)
