"""What a job returns to Hydra's sweeper.

A sweeper that optimises (Optuna) needs one float; growlab's own sweeper needs the run's
status. `RunOutcome` is both: a float equal to the final stage's `return_metric` (a validation
metric unless asked otherwise, so tuning never looks at the test set; NaN when the run did not
complete), carrying the status and the run directory.

`float()` of a run that did not complete raises ValueError: hydra-optuna-sweeper then tells
Optuna the trial failed and goes on. (Given NaN it would tell Optuna the trial completed, which
Optuna refuses with a ValueError that ends the whole search.) Arithmetic and `math.isnan` still
see NaN.
"""

from __future__ import annotations

import math
from typing import Any

# Optuna's direction for each return_metric (the `growlab_direction` resolver).
DIRECTIONS = {"val_acc": "maximize", "val_loss": "minimize", "test_acc": "maximize"}


class RunOutcome(float):
    status: str
    run_dir: str
    metric: str
    test_acc: float | None

    def __new__(
        cls,
        value: float | None,
        status: str,
        run_dir: str,
        metric: str,
        test_acc: float | None = None,
    ) -> RunOutcome:
        number = float(value) if isinstance(value, int | float) and status == "completed" else None
        outcome = super().__new__(cls, math.nan if number is None else number)
        outcome.status, outcome.run_dir, outcome.metric = status, run_dir, metric
        outcome.test_acc = test_acc
        return outcome

    def __float__(self) -> float:
        if self.status != "completed":
            raise ValueError(f"run {self.run_dir} did not complete ({self.status})")
        return super().__float__()

    def __reduce__(self) -> tuple[Any, ...]:
        # float's own pickling would call __new__ with the number alone (submitit pickles this).
        args = (super().__float__(), self.status, self.run_dir, self.metric, self.test_acc)
        return RunOutcome, args

    def __repr__(self) -> str:
        return f"{self.metric}={super().__float__():.6g} ({self.status}, {self.run_dir})"


def outcome(summary: dict[str, Any], metric: str, run_dir: str) -> RunOutcome:
    stages = summary.get("stages") or []
    value = stages[-1].get(metric) if stages else None
    status = str(summary.get("status", "failed"))
    return RunOutcome(value, status, run_dir, metric, summary.get("test_acc"))


def direction(metric: Any) -> str:
    return DIRECTIONS[getattr(metric, "value", metric)]
