"""The report's comparison sections as tables: the verdict against the baseline, the
comparison at equal training compute, and what each new stage did to the validation loss."""

from __future__ import annotations

from typing import Any

from growlab.report.aggregate import Sweep
from growlab.report.baseline import (
    compute_rows,
    has_baseline,
    pairing_keys,
    stage_help_rows,
    verdict_rows,
)
from growlab.report.formats import interval, num
from growlab.report.tables import Table


def _f(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return num(value, digits)
    return str(value)


def _delta_ci(row: dict[str, Any]) -> list[str]:
    """The mean difference and its interval, rounded by the interval's half-width."""
    return list(interval(row["delta_mean"], row["ci_low"], row["ci_high"]))


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _no_baseline(
    title: str, dims: list[str], headers: list[str], baseline: str, name: str
) -> Table:
    note = (
        f"No completed run of the baseline strategy `{baseline}` in this sweep, so there is "
        "nothing to pair against (choose another with --baseline)."
    )
    return Table(title, [*dims, *headers], [], note, name, records=[])


VERDICT_HEADERS = [
    "depth", "n", "test acc", "baseline", "Δ test acc", "95% CI (t)", "p (paired t)", "p (Holm)",
    "verdict",
]  # fmt: skip


def verdict_table(sweep: Sweep, baseline: str, pair_on: list[str] | None = None) -> Table:
    title = f"Against the baseline ({baseline}): paired Δ final test accuracy"
    dims = sweep.line_dims
    if not has_baseline(sweep, baseline):
        return _no_baseline(title, dims, VERDICT_HEADERS, baseline, "verdict")
    records = verdict_rows(sweep, baseline, pair_on)
    rows = [
        [
            *(str(r[d]) for d in dims),
            str(r["depth"]),
            str(r["n"]),
            _f(r["test_acc"]),
            _f(r["baseline_test_acc"]),
            *_delta_ci(r),
            _p(r["p_value"]),
            _p(r["p_holm"]),
            r["verdict"],
        ]
        for r in records
    ]
    unpaired = sum(r["unpaired_runs"] for r in records)
    shared = ", ".join(pairing_keys(sweep, pair_on))
    note = (
        f"Each run minus the {baseline} run of the same {shared}. Mean over seeds, 95% "
        "interval from Student's t over the per-seed differences, two-sided paired t-test, "
        "Holm's correction over every row of this table; a verdict needs Holm p < 0.05 and "
        "n ≥ 2. Δ and interval are rounded to the interval's second significant digit."
        + (f" {unpaired} run(s) had no baseline partner and are left out." if unpaired else "")
    )
    return Table(title, [*dims, *VERDICT_HEADERS], rows, note, "verdict", records=records)


COMPUTE_HEADERS = [
    "depth", "n", "FLOPs / baseline's", "acc within baseline budget", "Δ vs baseline acc",
    "95% CI (t)", "reached baseline acc", "FLOPs to reach it / baseline's", "final acc",
    "baseline acc at its FLOPs",
]  # fmt: skip


def compute_table(sweep: Sweep, baseline: str, pair_on: list[str] | None = None) -> Table:
    title = f"At equal training compute (against {baseline})"
    dims = sweep.line_dims
    if not has_baseline(sweep, baseline):
        return _no_baseline(title, dims, COMPUTE_HEADERS, baseline, "equal_compute")
    records = compute_rows(sweep, baseline, pair_on)
    rows = []
    for r in records:
        reach = r["flops_to_baseline_acc_ratio"]
        rows.append(
            [
                *(str(r[d]) for d in dims),
                str(r["depth"]),
                str(r["n"]),
                _f(r["flops_ratio"], 3),
                _f(r["acc_at_baseline_budget"]),
                *_delta_ci(r),
                f"{r['reached_baseline_acc']}/{r['n']}",
                "never" if reach is None else _f(reach, 3),
                _f(r["final_test_acc"]),
                _f(r["baseline_acc_at_own_budget"]),
            ]
        )
    note = (
        "Per seed, against the paired baseline run's final cumulative training FLOPs B and "
        "final test accuracy A, with test accuracy interpolated linearly in FLOPs between stage "
        "ends: the accuracy reached within B (a run that ended before B keeps its final "
        "accuracy), its difference from A (mean, 95% t interval), and the FLOPs at which the "
        "run first reached A, over the seeds that reached it (never: no seed did). Last two "
        "columns: the run's final accuracy and the baseline's accuracy at the run's own final "
        "FLOPs (interpolated the same way; a baseline that ended earlier keeps its final "
        "accuracy). Δ and interval are rounded to the interval's second significant digit."
    )
    return Table(title, [*dims, *COMPUTE_HEADERS], rows, note, "equal_compute", records=records)


def stage_help_table(sweep: Sweep) -> Table:
    dims = sweep.line_dims
    records = stage_help_rows(sweep)
    headers = ["depth", "stage", "phase", "n", "Δ val loss", "95% CI (t)", "helped"]
    rows = [
        [
            *(str(r[d]) for d in dims),
            str(r["depth"]),
            str(r["stage"]),
            r["phase"],
            str(r["n"]),
            *_delta_ci(r),
            f"{r['helped']}/{r['n']}",
        ]
        for r in records
    ]
    note = (
        "Validation loss at the end of each stage minus at the end of the stage before (negative: "
        "the stage helped), mean and 95% t interval over the seeds of each line's deepest runs."
    )
    return Table(
        "Did the new stage help?", [*dims, *headers], rows, note, "stage_help", records=records
    )
