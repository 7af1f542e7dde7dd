"""A W&B report over the sweep's group, built with wandb-workspaces.

Charts group the sweep's runs by strategy and depth (mean ± std over seeds). Online, the report
is saved to W&B; either way its spec (the view spec W&B stores) is written next to the local
report, so an offline machine still shows what would be published.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from growlab.report.aggregate import Sweep
from growlab.report.metric import ACCURACY, Metric
from growlab.tracking.wandb_logger import base_url, resolve_mode, server_answers

log = logging.getLogger(__name__)
SPEC_FILE = "wandb_report.json"


def report_target(sweep: Sweep, sweep_dir: Path) -> dict[str, str | None]:
    """Project, entity and group the sweep's runs were logged under (as the logger derives them)."""

    def common(key: str) -> Any:
        values = Counter(r.config.get(key) for r in sweep.runs if r.config.get(key))
        return values.most_common(1)[0][0] if values else None

    return {
        "project": str(common("logger.project") or "growlab"),
        "entity": common("logger.entity"),
        "group": str(common("logger.group") or Path(sweep_dir).resolve().name),
    }


def build_report(
    project: str,
    entity: str,
    group: str,
    summary_md: str,
    runset_entity: str | None = None,
    metric: Metric = ACCURACY,
) -> Any:
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    def line(title: str, x: str, y: str, **kw: Any) -> Any:
        return wr.LinePlot(
            title=title, x=x, y=[y], groupby_aggfunc="mean", groupby_rangefunc="stddev", **kw
        )

    runset = wr.Runset(
        entity=entity if runset_entity is None else runset_entity,
        project=project,
        name=f"sweep {group}",
        filters=expr.And(expr.Metric("Group") == group),
        groupby=["config.strategy.name", "config.depth"],
    )
    noun, key = f"Test {metric.noun}", metric.key
    panels = [
        line(f"{noun} vs depth", "depth", f"depth/{key}"),
        line(f"{noun} vs training FLOPs", "stage/cum_train_flops", f"stage/{key}", log_x=True),
        line("New stage helped (1 = val loss fell)", "stage", "stage/improved"),
        line("Preservation error at growth", "stage", "growth/preservation_error", log_y=True),
        line("Growth shock: val acc after insertion", "stage", "growth/shock/acc_after"),
        line("Train loss", "global_epoch", "epoch/train_loss"),
        line("Validation accuracy", "global_epoch", "epoch/val_acc"),
        wr.BarPlot(
            title=f"Final test {metric.noun}",
            metrics=[key],
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        ),  # fmt: skip
    ]
    return wr.Report(
        project=project,
        entity=entity,
        title=f"growlab sweep {group}"[:128],
        description="Growth strategies × depths, mean ± std over seeds.",
        blocks=[
            wr.MarkdownBlock(text=summary_md),
            wr.PanelGrid(runsets=[runset], panels=panels),
        ],
    )


def report_spec(report: Any) -> dict[str, Any]:
    try:
        return report._to_model().model_dump(by_alias=True, exclude_none=True, mode="json")
    except Exception:  # noqa: BLE001 - a private API: fall back to the public fields
        from pydantic import TypeAdapter

        return TypeAdapter(type(report)).dump_python(report, mode="json")


def online() -> bool:
    return resolve_mode("auto")[0] == "online" and server_answers(base_url(), timeout=5.0)


def publish(sweep: Sweep, sweep_dir: Path, out_dir: Path, summary_md: str) -> str:
    """Save the report when online; always write its spec. Returns a line for the user."""
    target = report_target(sweep, sweep_dir)
    project, group = str(target["project"]), str(target["group"])
    spec_path = out_dir / SPEC_FILE
    if online():
        try:
            import wandb

            entity = target["entity"] or wandb.Api().default_entity
            report = build_report(project, entity, group, summary_md, metric=sweep.metric)
            spec_path.write_text(json.dumps(report_spec(report), indent=1))
            report.save()
            return f"W&B report saved: {report.url}"
        except Exception as exc:  # noqa: BLE001 - the local report is already written
            log.warning("W&B report could not be saved (%s); writing its spec only", exc)
    # Offline: no entity lookup and no run-set project lookup, both need the W&B API.
    entity = target["entity"] or ""
    report = build_report(project, entity, group, summary_md, "", sweep.metric)
    spec_path.write_text(json.dumps(report_spec(report), indent=1))
    return (
        f"W&B is offline: report for group {group!r} in project {project!r} not saved; "
        f"its spec is in {spec_path} (rerun with --wandb when online to publish it)"
    )
