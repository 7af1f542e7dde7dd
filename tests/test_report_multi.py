"""One report over several sweep folders (issue 27): runs counted once across folders, chosen by
--include/--exclude, paired with the baseline on --pair-on keys; every table also as CSV and
booktabs LaTeX holding report.json's numbers; refusals in one line before anything is written."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from growlab.engine.run_directory.result_identity import fingerprint
from growlab.report import ReportInputError, make_report
from growlab.report.__main__ import main
from growlab.report.collect import flatten
from growlab.report.formats import interval, mean_pm

BASE = [0.80, 0.83, 0.78]  # the baseline's final accuracy per seed


def write_run(
    root: Path,
    strategy: str,
    seed: int,
    curve: list[tuple[float, float]],
    depth: int = 3,
    lr: float = 0.01,
    name: str | None = None,
) -> Path:
    """A completed run with its config (.hydra and the summary's fingerprint) whose stages end
    at the given (cumulative training FLOPs, test accuracy)."""
    run = root / (name or f"{strategy}-d{depth}-s{seed}-lr{lr}")
    (run / ".hydra").mkdir(parents=True)
    tree = {"strategy": {"name": strategy}, "seed": seed, "depth": depth}
    tree |= {"optimizer": {"lr": lr}, "model": {"name": "mlp"}, "data": {"name": "digits"}}
    OmegaConf.save(OmegaConf.create(tree), run / ".hydra" / "config.yaml")
    stages = [
        {"stage": k, "phase": "train" if k == 0 else "grow", "depth": depth, "test_acc": acc,
         "val_loss": 1 - acc, "cum_train_flops": flops, "improved": None if k == 0 else True}
        for k, (flops, acc) in enumerate(curve)
    ]  # fmt: skip
    config = flatten(tree)
    summary: dict[str, Any] = {
        "strategy": strategy, "model": "mlp", "data": "digits", "seed": seed, "depth": depth,
        "status": "completed", "test_acc": curve[-1][1], "train_flops": curve[-1][0],
        "wall_s": 1.0 + seed, "stages": stages, "config": config,
        "config_fingerprint": fingerprint(config),
    }  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    return run


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Folder A: the baseline and `grow` at lr 0.01. Folder B: `grow` tuned to lr 0.001 (seeds
    0-2, +0.04 on the baseline's seed), and a copy of A's baseline run of seed 0."""
    a, b = tmp_path / "A", tmp_path / "B"
    for seed, base in enumerate(BASE):
        write_run(a, "from-scratch", seed, [(2e9, base - 0.1), (4e9, base)])
        write_run(a, "grow", seed, [(1e9, base - 0.2), (2e9, base - 0.01)])
        write_run(b, "grow", seed, [(1e9, base - 0.1), (3e9, base + 0.04)], lr=0.001)
    write_run(b, "from-scratch", 0, [(2e9, BASE[0] - 0.1), (4e9, BASE[0])], name="copied")
    return a, b


def tables(files: Any) -> dict[str, dict[str, Any]]:
    report = json.loads(files.json.read_text())
    return {t["name"]: t for t in report["tables"]}


def by_lr(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["optimizer.lr"]: row for row in rows}


def test_several_folders_make_one_report_and_count_a_copied_run_once(folders, tmp_path) -> None:
    files = make_report(list(folders), tmp_path / "out")
    sweep = files.sweep
    assert len(sweep.runs) == 9 and len(sweep.ok) == 9  # 10 folders, one a copy
    (dup,) = sweep.duplicates
    assert {dup.run.name, dup.same_as.name} == {"A/from-scratch-d3-s0-lr0.01", "B/copied"}
    assert sorted(r.seed for r in sweep.ok if r.strategy == "from-scratch") == [0, 1, 2]
    (row,) = tables(files)["duplicates"]["rows"]
    assert row["config_fingerprint"] == dup.fingerprint
    md = files.markdown.read_text()
    assert "1 more folder(s) hold a run already counted" in md
    assert "growlab report: A + B" in md


def test_pair_on_pairs_a_strategy_tuned_elsewhere_with_the_baseline(folders, tmp_path) -> None:
    # By default a key that varies within a strategy (grow's lr) must match: B's runs, at
    # lr 0.001, find no baseline run at that lr.
    default = by_lr(tables(make_report(list(folders), tmp_path / "d"))["verdict"]["rows"])
    assert default[0.001]["n"] == 0 and default[0.001]["unpaired_runs"] == 3
    assert default[0.01]["n"] == 3
    files = make_report(list(folders), tmp_path / "p", pair_on="seed,depth")
    verdict = by_lr(tables(files)["verdict"]["rows"])
    tuned = verdict[0.001]
    assert tuned["n"] == 3 and tuned["unpaired_runs"] == 0
    assert tuned["delta_mean"] == pytest.approx(0.04)  # seed by seed, not across seeds
    assert tuned["verdict"] == "better"
    assert verdict[0.01]["delta_mean"] == pytest.approx(-0.01)
    assert "from-scratch run of the same model, data, seed, depth" in files.markdown.read_text()
    assert json.loads(files.json.read_text())["pair_on"] == ["seed", "depth"]


def test_pair_on_refuses_keys_that_leave_two_baseline_partners(folders, tmp_path) -> None:
    a, _ = folders
    write_run(a, "from-scratch", 0, [(2e9, 0.7)], depth=2)
    with pytest.raises(ReportInputError, match="--pair-on seed: baseline runs .* tells them"):
        make_report([a], tmp_path / "out", pair_on="seed")
    assert not (tmp_path / "out").exists()


def test_include_and_exclude_choose_the_runs(folders, tmp_path) -> None:
    both = list(folders)
    only_b = make_report(both, tmp_path / "1", include=["optimizer.lr=1e-3"]).sweep
    assert {(r.strategy, r.config["optimizer.lr"]) for r in only_b.runs} == {("grow", 0.001)}
    bare = make_report(both, tmp_path / "2", include=["from-scratch", "grow"]).sweep
    assert len(bare.runs) == 9  # values of one key: any of them
    anded = make_report(both, tmp_path / "3", include=["grow", "optimizer.lr=0.01"]).sweep
    assert {r.name.split("/")[0] for r in anded.runs} == {"A"} and len(anded.runs) == 3
    files = make_report(both, tmp_path / "4", exclude=["grow", "seed=2"])
    assert sorted(r.seed for r in files.sweep.runs) == [0, 1]
    assert {r.strategy for r in files.sweep.runs} == {"from-scratch"}
    assert "Runs chosen by --exclude grow --exclude seed=2." in files.markdown.read_text()
    assert json.loads(files.json.read_text())["exclude"] == ["grow", "seed=2"]
    # Several conditions in one --exclude: only the runs that meet all of them are left out.
    tuned_only = make_report(both, tmp_path / "5", exclude=["grow,optimizer.lr=0.01"]).sweep
    kept = {(r.strategy, r.config["optimizer.lr"]) for r in tuned_only.runs}
    assert ("grow", 0.001) in kept and ("grow", 0.01) not in kept and len(tuned_only.runs) == 6


def refusal(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*args, "--out", str(out)] if out else args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert not out.exists()  # nothing written
    return err


def test_refusals_name_the_bad_value_and_the_choices(folders, tmp_path, capsys) -> None:
    a, b = str(folders[0]), str(folders[1])
    out = tmp_path / "out"
    assert main([a, b]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 sweep folders need --out DIR" in err
    err = refusal([a, b, "--include", "optimiser.lr=0.01"], out, capsys)
    assert "unknown key 'optimiser.lr' (did you mean optimizer.lr?)" in err
    assert "valid keys: strategy, depth, seed" in err and "optimizer.lr" in err
    err = refusal([a, b, "--include", "grwo"], out, capsys)
    assert "--include strategy=grwo: no run has" in err and "from-scratch, grow" in err
    err = refusal([a, b, "--include", "from-scratch", "--include", "optimizer.lr=0.001"], out,
                  capsys)  # fmt: skip
    assert "leaves no run" in err and "optimizer.lr values: 0.001, 0.01" in err
    err = refusal([a, b, "--exclude", "depth=7"], out, capsys)
    assert "depth values: 3" in err
    err = refusal([a, b, "--pair-on", "seed,width"], out, capsys)
    assert "--pair-on: unknown key 'width'" in err
    err = refusal([a, b, "--pair-on", "strategy"], out, capsys)
    assert "--pair-on strategy" in err and "seed,depth" in err
    run = str(folders[0] / "grow-d3-s0-lr0.01")
    err = refusal([a, run], out, capsys)
    assert f"{run} is a run directory, not a sweep folder" in err
    err = refusal([a, str(tmp_path / "nope")], out, capsys)
    assert "nope does not exist" in err
    (tmp_path / "empty").mkdir()
    err = refusal([a, str(tmp_path / "empty")], out, capsys)
    assert "no run directories under" in err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same(cell: str, value: Any) -> bool:
    """A CSV cell read back against report.json's value (numbers exactly)."""
    if value is None:
        return cell == ""
    if isinstance(value, list):
        return json.loads(cell) == value
    if isinstance(value, bool | str):
        return cell == str(value)
    return float(cell) == value


def latex_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_text()
    assert "\\begin{tabular}" in text and "\\end{tabular}" in text
    head, body = text.split("\\toprule\n")[1].split("\\midrule\n")
    body = body.split("\\bottomrule")[0]

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.removesuffix(" \\\\").split(" & ")]

    return cells(head.strip()), [cells(line) for line in body.strip().splitlines() if line]


def untex(cell: str) -> str:
    return cell.replace("$\\pm$", "±").replace("---", "—").replace("\\_", "_")


def test_every_table_as_csv_and_latex_with_report_json_numbers(folders, tmp_path) -> None:
    files = make_report(list(folders), tmp_path / "out", pair_on="seed,depth")
    report = tables(files)
    assert set(report) == {
        "verdict", "equal_compute", "stage_help", "results", "depth", "problems", "runs",
        "duplicates",
    }  # fmt: skip
    for name, table in report.items():
        rows = read_csv(tmp_path / "out" / "tables" / f"{name}.csv")
        assert len(rows) == len(table["rows"]), name
        for cells, record in zip(rows, table["rows"], strict=True):
            assert list(cells) == list(record), name
            assert all(same(cells[k], v) for k, v in record.items()), (name, cells, record)
        headers, tex = latex_rows(tmp_path / "out" / "tables" / f"{name}.tex")
        assert len(tex) == len(table["rows"]) and all(len(r) == len(headers) for r in tex)
    # Numbers, not formatted strings: a mean and its spread or interval are separate fields.
    verdict = by_lr(report["verdict"]["rows"])
    tuned = verdict[0.001]
    assert all(isinstance(tuned[k], float) for k in ("delta_mean", "ci_low", "ci_high"))
    grow = next(r for r in report["results"]["rows"] if r["optimizer.lr"] == 0.001)
    assert isinstance(grow["test_acc_mean"], float) and isinstance(grow["test_acc_std"], float)
    assert grow["seeds"] == [0, 1, 2]
    # The LaTeX verdict table prints those numbers rounded by their interval.
    headers, tex = latex_rows(tmp_path / "out" / "tables" / "verdict.tex")
    assert headers[:3] == ["strategy", "optimizer.lr", "depth"] and "$\\Delta$ test acc" in headers
    row = next(r for r in tex if r[1] == "0.01")
    plain = verdict[0.01]
    delta, ci = interval(plain["delta_mean"], plain["ci_low"], plain["ci_high"])
    assert [row[headers.index("$\\Delta$ test acc")], row[headers.index("95\\% CI (t)")]] == [
        delta,
        ci,
    ]
    assert row[-1] == plain["verdict"]
    _, results = latex_rows(tmp_path / "out" / "tables" / "results.tex")
    cell = next(r for r in results if r[1] == "0.001")[5]
    assert untex(cell) == mean_pm(grow["test_acc_mean"], grow["test_acc_std"])
    text = (tmp_path / "out" / "tables" / "runs.tex").read_text()
    assert "A/from-scratch-d3-s0-lr0.01" in text and "B/copied" not in text


def test_the_equal_compute_table_has_the_baselines_accuracy_at_each_budget(tmp_path) -> None:
    root = tmp_path / "sweep"
    for seed in range(3):
        write_run(root, "from-scratch", seed, [(2e9, 0.6), (4e9, 0.7)])
        write_run(root, "cheap", seed, [(1e9, 0.6), (3e9, 0.8)])  # baseline at 3e9: 0.65
        write_run(root, "long", seed, [(2e9, 0.5), (8e9, 0.75)])  # past its end: 0.7
        write_run(root, "tiny", seed, [(1e9, 0.5)])  # before its first stage: none
    files = make_report(root, tmp_path / "out")
    rows = {r["strategy"]: r for r in tables(files)["equal_compute"]["rows"]}
    assert rows["cheap"]["baseline_acc_at_own_budget"] == pytest.approx(0.65)
    assert rows["cheap"]["final_test_acc"] == pytest.approx(0.8)
    assert rows["long"]["baseline_acc_at_own_budget"] == pytest.approx(0.7)
    assert rows["tiny"]["baseline_acc_at_own_budget"] is None
    md = files.markdown.read_text().split("## At equal training compute")[1].split("\n## ")[0]
    assert "| baseline acc at its FLOPs |" in md.splitlines()[4]
    assert "| 0.8000 | 0.6500 |" in md and "| — | — |" in md


def test_runs_are_listed_in_natural_order(tmp_path) -> None:
    root = tmp_path / "sweep"
    for i in (10, 2, 1, 21):
        write_run(root, "grow", i, [(1e9, 0.5)], name=f"run{i}")
    files = make_report(root, tmp_path / "out")
    expected = ["run1", "run2", "run10", "run21"]
    assert [r["run"] for r in tables(files)["runs"]["rows"]] == expected
    assert [r["run"] for r in read_csv(files.runs_csv)] == expected
    md = files.markdown.read_text().split("## Runs")[1]
    assert [md.index(f"| {n} |") for n in expected] == sorted(
        md.index(f"| {n} |") for n in expected
    )


def test_the_rounding_rule() -> None:
    assert mean_pm(0.95213, 0.0123) == "0.952 ± 0.012"
    assert mean_pm(0.95213, 0.00996) == "0.952 ± 0.010"  # the spread rounds up a digit
    assert mean_pm(0.8, 0.0044) == "0.8000 ± 0.0044"
    assert mean_pm(1234.5, 456.0) == "1230 ± 460"
    assert mean_pm(0.95213, None) == "0.9521"  # no spread: four decimals
    assert mean_pm(0.95213, 0.0) == "0.9521"
    assert mean_pm(1.64e11, 2.5e9) == "1.640e+11 ± 2.5e+09"
    assert interval(0.0512, 0.0401, 0.0623) == ("+0.051", "[+0.040, +0.062]")
    assert interval(-0.2, -0.2, -0.2) == ("-0.2000", "[-0.2000, -0.2000]")  # no width
    assert interval(0.05, None, None) == ("+0.0500", "—")
    assert interval(None, None, None) == ("—", "—")
