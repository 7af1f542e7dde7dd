"""The report's comparison sections as tables: the verdict against the baseline, the
comparison at equal training compute, and what each new stage did to the validation loss."""

from __future__ import annotations

from typing import Any

from growlab.report.aggregate import Sweep
from growlab.report.baseline import compute_fields, compute_rows, stage_help_rows, verdict_rows
from growlab.report.formats import interval, num
from growlab.report.metric import ACCURACY, Metric
from growlab.report.pairing import has_baseline, pairing_keys
from growlab.report.tables import Table


def cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return num(value, digits)
    return str(value)


def delta_ci(row: dict[str, Any]) -> list[str]:
    """The mean difference and its interval, rounded by the interval's half-width."""
    return list(interval(row["delta_mean"], row["ci_low"], row["ci_high"]))


def p_cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _no_baseline(
    title: str, dims: list[str], headers: list[str], baseline: str, name: str
) -> Table:
    note = (
        f"No completed run of the baseline strategy `{baseline}` in this sweep, so there is "
        "nothing to pair against (choose another with --baseline)."
    )
    return Table(title, [*dims, *headers], [], note, name, records=[])


def verdict_headers(metric: Metric) -> list[str]:
    return [
        "depth", "n", metric.label, "baseline", f"Δ {metric.label}", "95% CI (t)",
        "p (paired t)", "p (Holm)", "verdict",
    ]  # fmt: skip


VERDICT_HEADERS = verdict_headers(ACCURACY)


def verdict_table(sweep: Sweep, baseline: str, pair_on: list[str] | None = None) -> Table:
    metric = sweep.metric
    title = f"Against the baseline ({baseline}): paired Δ final test {metric.noun}"
    dims, headers = sweep.line_dims, verdict_headers(metric)
    if not has_baseline(sweep, baseline):
        return _no_baseline(title, dims, headers, baseline, "verdict")
    records = verdict_rows(sweep, baseline, pair_on)
    rows = [
        [
            *(str(r[d]) for d in dims),
            str(r["depth"]),
            str(r["n"]),
            cell(r[metric.key]),
            cell(r[f"baseline_{metric.key}"]),
            *delta_ci(r),
            p_cell(r["p_value"]),
            p_cell(r["p_holm"]),
            r["verdict"],
        ]
        for r in records
    ]
    unpaired = sum(r["unpaired_runs"] for r in records)
    shared = ", ".join(pairing_keys(sweep, pair_on, baseline))
    note = (
        f"Each run minus the {baseline} run of the same {shared} ({metric.direction}). "
        "Mean over seeds, 95% "
        "interval from Student's t over the per-seed differences, two-sided paired t-test, "
        "Holm's correction over every row of this table; a verdict needs Holm p < 0.05 and "
        "n ≥ 2. Δ and interval are rounded to the interval's second significant digit."
        + (f" {unpaired} run(s) had no baseline partner and are left out." if unpaired else "")
    )
    return Table(title, [*dims, *headers], rows, note, "verdict", records=records)


def compute_headers(metric: Metric) -> list[str]:
    short = metric.short
    return [
        "depth", "n", "FLOPs / baseline's", f"{short} within baseline budget",
        f"Δ vs baseline {short}", "95% CI (t)", f"reached baseline {short}",
        "FLOPs to reach it / baseline's", f"final {short}", f"baseline {short} at its FLOPs",
    ]  # fmt: skip


COMPUTE_HEADERS = compute_headers(ACCURACY)


def compute_table(sweep: Sweep, baseline: str, pair_on: list[str] | None = None) -> Table:
    title = f"At equal training compute (against {baseline})"
    metric = sweep.metric
    dims, headers, names = sweep.line_dims, compute_headers(metric), compute_fields(metric)
    if not has_baseline(sweep, baseline):
        return _no_baseline(title, dims, headers, baseline, "equal_compute")
    records = compute_rows(sweep, baseline, pair_on)
    rows = []
    for r in records:
        reach = r[names["to_reach"]]
        rows.append(
            [
                *(str(r[d]) for d in dims),
                str(r["depth"]),
                str(r["n"]),
                cell(r["flops_ratio"], 3),
                cell(r[names["at_budget"]]),
                *delta_ci(r),
                f"{r[names['reached']]}/{r['n']}",
                "never" if reach is None else cell(reach, 3),
                cell(r[names["final"]]),
                cell(r[names["base_at_own"]]),
            ]
        )
    name = metric.noun
    reach_rule = "at least" if metric.higher_is_better else "at most"
    note = (
        "Per seed, against the paired baseline run's final cumulative training FLOPs B and "
        f"final {metric.label} A ({metric.direction}), with the {name} interpolated linearly "
        f"in FLOPs between stage ends: the {name} reached within B (a run that ended before B "
        f"keeps its final {name}), its difference from A (mean, 95% t interval), and the FLOPs "
        f"at which the run first reached A ({reach_rule} A), over the seeds that reached it "
        f"(never: no seed did). Last two columns: the run's final {name} and the baseline's "
        f"{name} at the run's own final FLOPs (interpolated the same way; a baseline that "
        f"ended earlier keeps its final {name}). Δ and interval are rounded to the interval's "
        "second significant digit."
    )
    return Table(title, [*dims, *headers], rows, note, "equal_compute", records=records)


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
            *delta_ci(r),
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
