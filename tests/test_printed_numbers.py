"""Printed numbers are short (a learning rate to 3 significant digits, an accuracy to 4
decimals) while the records keep every digit; Optuna's set-up chatter is not printed."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from conftest import FAST, run_cli
from omegaconf import OmegaConf

from growlab.cli.log_setup import HideSetupLines, RoundNumbers, verbose
from growlab.engine.progress import acc_text, finished_line, round_numbers

SETUP_CHATTER = ("A new study created", "Study name:", "Storage:", "setup plugin alembic")


CASES = [
    ("#0 : optimizer.lr=0.004430375245218269 depth=2", "#0 : optimizer.lr=0.00443 depth=2"),
    ("optimizer.lr=9.765625019e-05 seed=3", "optimizer.lr=9.77e-05 seed=3"),
    (
        "Best parameters: {'optimizer.lr': 0.008599896169}",
        "Best parameters: {'optimizer.lr': 0.0086}",
    ),
    # What a person types stays as typed; names and paths with digits are no numbers.
    ("optimizer.lr=0.001 model.dropout=0.15 train.max_loss=1e-3 seed=12", None),
    ("sweep/freeze-all-but-new-d2-s0-9421dfdc v1.2345678 10.0.0.1234567", None),
]


@pytest.mark.parametrize(("text", "printed"), CASES)
def test_long_numbers_are_rounded_in_text(text: str, printed: str | None) -> None:
    assert round_numbers(text) == (printed or text)


def test_metrics_get_four_decimals_and_the_finished_line_too() -> None:
    assert round_numbers("Best value: 0.9440559440559441", metric=True) == "Best value: 0.9441"
    assert acc_text(0.9521126760563381) == "0.9521" and acc_text(None) == "None"
    summary = {"status": "completed", "test_acc": 0.9521126760563381}
    assert finished_line("runs/a", summary) == "run runs/a finished: completed, test_acc 0.9521"
    lm = {**summary, "primary_metric": "test_loss", "test_loss": 1.897412345}
    assert finished_line("runs/b", lm) == "run runs/b finished: completed, test_loss 1.8974"


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("x", logging.INFO, __file__, 1, message, args, None)


def test_the_filters_round_optunas_result_and_hide_its_setup_lines() -> None:
    best = record("Best value: %s", 0.9440559440559441)
    assert RoundNumbers().filter(best) and best.getMessage() == "Best value: 0.9441"
    pareto = record("    Values: [0.9440559440559441], Params: {'optimizer.lr': 0.00443037524}")
    RoundNumbers().filter(pareto)
    assert pareto.getMessage() == "    Values: [0.9441], Params: {'optimizer.lr': 0.00443}"
    hide = HideSetupLines()
    assert not hide.filter(record("Study name: no-name-1")) and not hide.filter(
        record("Storage: None")
    )
    assert hide.filter(record("Directions: ['maximize']"))


def test_hydra_verbose_on_the_command_line_keeps_the_chatter() -> None:
    assert verbose(["-m", "hydra.verbose=true"]) and verbose(["hydra.verbose=[optuna,hydra]"])
    assert not verbose(["hydra.verbose=false"]) and not verbose(["-m", "depth=2"])


def printed_optuna_sweep(tmp_path: Path, *extra: str) -> tuple[str, Path]:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=optuna", "optimizer.lr=interval(1e-4,1e-2)", *FAST, "depth=1"]
    result = run_cli(
        [*args, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}", *extra], tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr, sweep


@pytest.mark.slow
def test_an_optuna_sweep_prints_short_numbers_and_no_storage_setup(tmp_path) -> None:
    printed, sweep = printed_optuna_sweep(tmp_path)
    assert not [line for line in printed.splitlines() if line.endswith(SETUP_CHATTER)]
    assert not any(chatter in printed for chatter in SETUP_CHATTER)
    assert "Directions: ['maximize']" in printed  # what the search optimises stays
    lrs = re.findall(r"#\d+ : optimizer\.lr=(\S+)", printed)
    assert len(lrs) == 2 and all(
        len(lr.lstrip("0.").split("e")[0].replace(".", "")) <= 3 for lr in lrs
    )
    accs = re.findall(r"finished: completed, test_acc (\S+)", printed)
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    assert sorted(accs) == sorted(f"{s['test_acc']:.4f}" for s in summaries)
    assert all(len(str(s["test_acc"])) > 6 for s in summaries)  # full precision kept
    (best_value,) = re.findall(r"Best value: (\S+)", printed)
    found = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best_value == f"{found.best_value:.4f}" and best_value != str(found.best_value)
    ran = [OmegaConf.load(p).optimizer.lr for p in sweep.glob("*/.hydra/config.yaml")]
    assert sorted(f"{lr:.3g}" for lr in ran) == sorted(lrs)  # drawn in full, printed short


@pytest.mark.slow
def test_hydra_verbose_prints_optunas_setup(tmp_path) -> None:
    printed, _ = printed_optuna_sweep(tmp_path, "hydra.verbose=true")
    assert "A new study created in memory" in printed and "Storage: None" in printed
