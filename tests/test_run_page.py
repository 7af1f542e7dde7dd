"""One run's page, built from constructed run directories whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

from growlab.report import make_report, make_run_page
from growlab.report.__main__ import main as report_main


def stage(k: int, depth: int, phase: str, acc: float, **extra) -> dict:
    return {
        "stage": k, "phase": phase, "depth": depth, "test_acc": acc, "val_acc": acc,
        "val_loss": 1 - acc, "train_acc": acc + 0.05, "params_total": 100 * depth,
        "params_trainable": 50, "flops_per_sample": 1000 * depth, "improved": k > 0 or None,
        "preservation_error": 0.0 if phase == "grow" else None, "wall_s": 0.1,
        "shock": {"acc_before": acc, "acc_after": acc - 0.1} if phase == "grow" else None,
        "activation_norms": [1.0] * depth, "activation_grad_norms": [0.1] * depth, **extra,
    }  # fmt: skip


def write_run(
    run_dir: Path,
    plan: list[tuple[str, int]],
    status: str = "completed",
    summary_extra: dict | None = None,
    epoch_acc: bool = True,
    stage_extra: dict | None = None,
    write_summary: bool = True,
) -> list[int]:
    """A run of `plan` [(phase, epochs)]; returns the epoch count before each growth."""
    run_dir.mkdir(parents=True)
    rows, stages, growth_at, depth, epochs = [], [], [], 1, 0
    for k, (phase, n) in enumerate(plan):
        if phase == "grow":
            depth += 1
            growth_at.append(epochs)
            rows.append(
                {
                    "event": "growth",
                    "stage": k,
                    "depth": depth,
                    "preservation_error": 0.0,
                    "shock": {"acc_before": 0.8, "acc_after": 0.7},
                }
            )
        for e in range(1, n + 1):
            epochs += 1
            acc = 0.5 + 0.01 * epochs if epoch_acc else None
            rows.append(
                {
                    "event": "epoch",
                    "stage": k,
                    "depth": depth,
                    "epoch": e,
                    "train_loss": 1 / epochs,
                    "val_loss": 1.1 / epochs,
                    "train_acc": acc,
                    "val_acc": acc,
                }
            )
        stages.append(stage(k, depth, phase, 0.6 + 0.05 * k, **(stage_extra or {})))
        rows.append({"event": "stage", **stages[-1]})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if write_summary:
        summary = {
            "status": status,
            "strategy": "s",
            "operator": "IdentityBlock",
            "model": "mlp",
            "data": "digits",
            "seed": 0,
            "depth": depth,
            "stages": stages,
            "test_acc": stages[-1]["test_acc"],
            **(summary_extra or {}),
        }
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return growth_at


def check_files(page) -> None:
    assert {p.name for p in page.plots} >= {"run_curves.png", "run_acc_by_depth.png"}
    for path in [page.markdown, page.html, *page.plots]:
        assert path.stat().st_size > 0, path


def test_completed_growth_run_marks_growth_where_the_metrics_say(tmp_path) -> None:
    run = tmp_path / "run"
    growth_at = write_run(run, [("train", 3), ("grow", 2), ("grow", 4), ("finetune", 2)])
    page = make_run_page(run)
    check_files(page)
    assert [m.x for m in page.data.growth] == growth_at == [3, 5]
    assert [m.depth for m in page.data.growth] == [2, 3]
    assert page.data.finetune_x == 9
    assert "run_block_norms.png" in {p.name for p in page.plots}
    html = page.html.read_text()
    assert "Status: completed." in html and "IdentityBlock" in html
    table = page.markdown.read_text()
    assert (
        "| 1 | grow | 2 | 200 (50) | 2000 | 0.6500 | 0.3500 | yes | 0.0e+00 | 0.650 → 0.550 |"
        in table
    )


def test_from_scratch_run_has_no_growth_marks(tmp_path) -> None:
    run = tmp_path / "run"
    write_run(run, [("train", 3), ("train", 3)])
    page = make_run_page(run)
    check_files(page)
    assert page.data.growth == [] and len(page.data.epochs) == 6


def test_autoencoder_run_without_epoch_accuracy_uses_the_classifier(tmp_path) -> None:
    run = tmp_path / "run"
    write_run(
        run,
        [("train", 2), ("grow", 2)],
        epoch_acc=False,
        stage_extra={"classifier_train_acc": 0.99},
    )
    page = make_run_page(run)
    check_files(page)
    assert all(row["train_acc"] is None for row in page.data.epochs)


def test_diverged_and_unfinished_runs_get_a_page_saying_so(tmp_path) -> None:
    diverged = tmp_path / "diverged"
    write_run(
        diverged,
        [("train", 2)],
        status="diverged",
        summary_extra={"error": "stage 0 epoch 2: training loss 1e9 exceeds ..."},
    )
    with open(diverged / "metrics.jsonl", "a") as f:
        f.write('{"event": "epo')  # cut short by a kill
    page = make_run_page(diverged)
    check_files(page)
    assert "Status: diverged: stage 0 epoch 2" in page.html.read_text()
    running = tmp_path / "running"
    write_run(running, [("train", 2), ("grow", 1)], write_summary=False)
    page = make_run_page(running)
    check_files(page)
    assert "Status: incomplete" in page.html.read_text() and len(page.data.growth) == 1


def test_sweep_report_links_run_pages_and_plots_train_against_test(tmp_path, capsys) -> None:
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        write_run(sweep / f"{seed}_run", [("train", 2), ("grow", 2)], summary_extra={"seed": seed})
    assert report_main([str(sweep / "0_run")]) == 0  # a run directory: its page
    assert "Status: completed." in capsys.readouterr().out
    files = make_report(sweep)
    assert (sweep / "train_vs_test.png").stat().st_size > 0
    html = files.html.read_text()
    assert "<a href='0_run/report.html'>0_run</a>" in html
    assert "<a href='1_run/report.html'>" not in html  # no page made for that one
    assert report_main([str(sweep), "--run-pages"]) == 0
    assert (sweep / "1_run" / "report.html").exists()
