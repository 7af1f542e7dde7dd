"""The one entry point: `python -m growlab [overrides]`, `-m` for a sweep.

Exit codes of a single run: 0 completed (or already completed), 1 failed, 2 refused (an invalid
config or a run directory that cannot be used; nothing was trained), 3 diverged. In a sweep a
job never raises: its status goes back to the sweeper, which runs every other job and then
reports how many did not complete (exit 1 if any; an Optuna search too, after writing its
results). Hydra's own refusals (a bad override, a missing option, an output folder that cannot
be made) are one line, exit 2 (growlab.cli.exit_status).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from growlab import __version__
from growlab.cli.exit_status import (
    exit_if_incomplete,
    one_line_refusals,
    refuse,
    run_finished,
    work_started,
)
from growlab.cli.log_setup import setup_logging
from growlab.cli.search_path import show_in_help
from growlab.config import ReturnMetric
from growlab.config_registration import register_configs
from growlab.engine.job import Refused, run_job
from growlab.engine.outcome import RunOutcome, outcome
from growlab.engine.progress import finished_line, log_sweep_count

log = logging.getLogger("growlab")
register_configs()

EXIT_FAILED, EXIT_REFUSED, EXIT_DIVERGED = 1, 2, 3
OPTUNA, DIRECTION = "hydra/sweeper=optuna", "hydra.sweeper.direction="


@hydra.main(version_base="1.3", config_path="pkg://growlab.conf", config_name="config")
def main(cfg: DictConfig) -> RunOutcome:
    """Returns the final stage's `return_metric` (a float, for Optuna) with the run's status."""
    work_started()
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    metric = ReturnMetric(cfg.return_metric).value
    try:
        summary = run_job(cfg, run_dir)
    except Refused as exc:
        log.error("%s", exc)
        if not sweeping:
            raise SystemExit(EXIT_REFUSED) from None
        run_finished("refused")
        return RunOutcome(None, "refused", str(run_dir), metric)
    except Exception:
        if not sweeping:
            raise
        log.exception("run %s failed", run_dir)  # the sweep goes on with its other jobs
        run_finished("failed")
        return RunOutcome(None, "failed", str(run_dir), metric)
    status = summary.get("status")
    log.info("%s", finished_line(run_dir, summary))
    if sweeping:
        run_finished(str(status))
        log_sweep_count()
    elif status != "completed":
        raise SystemExit(EXIT_DIVERGED if status == "diverged" else EXIT_FAILED)
    return outcome(summary, metric, str(run_dir))


def cli() -> None:
    """The `growlab` command: `--version`, then Hydra. GROWLAB_CONFIG_PATH (folders separated
    by the OS path separator) adds the user's config folders to Hydra's search path (a Hydra
    plugin, so in any argument order and in --help). With hydra/sweeper=optuna and no
    direction given, Optuna optimises return_metric's way."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        print(f"growlab {__version__}")
        return
    if OPTUNA in sys.argv[1:] and not any(a.startswith(DIRECTION) for a in sys.argv[1:]):
        # Optuna minimises unless told; return_metric says which way is better. Next to the
        # sweeper's override: argparse takes overrides only as one run of arguments.
        where = sys.argv.index(OPTUNA) + 1
        sys.argv.insert(where, DIRECTION + "'${growlab_direction:${return_metric}}'")
    setup_logging(sys.argv[1:], optuna=OPTUNA in sys.argv[1:])
    # GROWLAB_CONFIG_PATH itself is read by hydra_plugins/growlab_searchpath (cli/search_path.py).
    search_path_for_help(sys.argv[1:])
    sys.argv[1:] = strategy_keys_for_sweep(sys.argv[1:])
    with one_line_refusals():
        try:
            main()
        except ValueError as exc:  # Hydra's own, before any work: `-m ... --cfg job`
            if not str(exc).startswith("Only one of --run, --multirun"):
                raise
            refuse(f"{exc} (--cfg shows one run's config: give it without -m)")
    if OPTUNA in sys.argv[1:]:  # growlab's own sweeper counts and exits itself
        exit_if_incomplete("optuna")


def search_path_for_help(args: list[str]) -> None:
    """Hydra's --help lists the config groups of the search path it starts with; a
    `hydra.searchpath=[...]` given with --help is added to it, so the user's options show."""
    if not any(a in ("--help", "-h") for a in args):
        return
    given = [a for a in args if a.startswith("hydra.searchpath=")]
    if not given:
        return
    try:
        value = OverridesParser.create().parse_overrides(given[-1:])[0].value()
    except HydraException:
        return  # Hydra reports the bad override itself
    if isinstance(value, list):
        show_in_help([str(entry) for entry in value])


def strategy_keys_for_sweep(args: list[str]) -> list[str]:
    """In a sweep over strategies, Hydra first composes one config with the default strategy
    (hydra#283), which lacks other strategies' keys (`strategy.final_width`); those overrides
    are given as `++strategy.<key>`, so that first config accepts them and every job's own
    strategy schema still checks them (a strategy without the key is refused before any run)."""
    sweeping = any(a in ("-m", "--multirun") for a in args)
    swept = any(a.startswith("strategy=") and "," in a and "[" not in a for a in args)
    if not (sweeping and swept):
        return args
    return [f"++{a}" if a.startswith("strategy.") else a for a in args]


if __name__ == "__main__":
    cli()
