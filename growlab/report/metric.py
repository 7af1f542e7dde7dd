"""Which number the report compares runs by, and which way is better.

A run says its primary metric in summary.json (`"primary_metric": "test_loss"` for a language
model); absent, it is `test_acc`, higher is better, as for every run from before. Every table,
verdict, equal-compute row, best-of choice and plot of one report uses one primary metric: a
sweep whose runs name different ones is refused (report them separately with
`--include primary_metric=...`), since a loss and an accuracy cannot be averaged or paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from growlab.report.collect import RunRecord
from growlab.report.select import ReportInputError


@dataclass(frozen=True)
class Metric:
    key: str  # the stage and summary field: test_acc, test_loss
    short: str  # the word in column and field names: acc, loss
    higher_is_better: bool
    train_keys: tuple[str, ...]  # the same number on the training data (first recorded)
    val_key: str
    noun: str  # in prose: accuracy, loss
    unit: str = ""

    @property
    def label(self) -> str:
        """`test acc`, `test loss`: the column header."""
        return f"test {self.short}"

    @property
    def axis(self) -> str:
        """A plot's axis label, with the direction that is better."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"test {self.short}{unit}, {self.way} is better"

    @property
    def way(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    @property
    def direction(self) -> str:
        sign = "positive" if self.higher_is_better else "negative"
        return f"{self.way} is better: a {sign} Δ is better"

    def better(self, a: float, b: float) -> bool:
        """Is `a` strictly better than `b`?"""
        return a > b if self.higher_is_better else a < b


# An autoencoder's classifier records its own training accuracy; other runs the last epoch's.
TRAIN_ACC = ("classifier_train_acc", "train_acc")
ACCURACY = Metric("test_acc", "acc", True, TRAIN_ACC, "val_acc", "accuracy")
LOSS = Metric("test_loss", "loss", False, ("train_loss",), "val_loss", "loss", unit="nats")
METRICS: dict[str, Metric] = {m.key: m for m in (ACCURACY, LOSS)}  # ACCURACY: collect's default


def metric_named(name: str, where: str = "") -> Metric:
    if name not in METRICS:
        raise ReportInputError(
            f"primary_metric {name!r}{where} is not one the report knows; valid: "
            f"{', '.join(METRICS)}"
        )
    return METRICS[name]


def run_metric(run: RunRecord) -> Metric:
    return metric_named(run.primary_metric, f" (run {run.name})")


def sweep_metric(runs: Sequence[RunRecord]) -> Metric:
    """The one primary metric of the runs that recorded a summary; several are refused."""
    by_name: dict[str, list[RunRecord]] = {}
    for run in runs:
        if run.summary:
            by_name.setdefault(run.primary_metric, []).append(run)
    if len(by_name) > 1:
        held = "; ".join(
            f"{name}: {len(found)} run(s), e.g. {found[0].name}" for name, found in by_name.items()
        )
        raise ReportInputError(
            f"the runs mix primary metrics ({held}); a loss and an accuracy cannot be compared: "
            f"report them separately, e.g. --include primary_metric={next(iter(by_name))}"
        )
    for run in runs:
        if run.summary:
            return run_metric(run)
    return ACCURACY
