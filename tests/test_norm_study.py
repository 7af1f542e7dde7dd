"""Seed 003's norm study on growlab MLPs: small dimensions, so it runs in seconds."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from growlab.cli.norm_measure import derived_seed, measure_output_norms, predicted_output_norm

REPO = Path(__file__).resolve().parents[1]
SMALL: dict[str, Any] = {"input_dim": 256, "width": 256, "max_depth": 6, "seeds": (0, 1, 2)}


def by_norm(rows: list[dict[str, Any]], norm: str) -> list[float]:
    return [r["output_norm"] for r in sorted(rows, key=lambda r: r["depth"]) if r["norm"] == norm]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return measure_output_norms(**SMALL)


def test_without_norm_the_output_shrinks_with_depth_until_the_bias_floor(
    rows: list[dict[str, Any]],
) -> None:
    none = by_norm(rows, "none")
    # About 1/sqrt(6) per hidden layer over the first layers (seed 003: 19.1, 7.6, 3.3, 1.5, 1.0).
    assert all(b < 0.6 * a for a, b in zip(none[:3], none[1:4], strict=True))
    assert none[0] / max(none[4:]) > 8
    # Then the biases hold it at a floor instead of zero.
    assert max(none[4:]) / min(none[4:]) < 1.5


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_batch_and_layer_norm_keep_the_output_norm_in_a_narrow_band(
    rows: list[dict[str, Any]], norm: str
) -> None:
    values = by_norm(rows, norm)[1:]  # depth 0 has no hidden layer, hence no norm layer
    assert max(values) / min(values) < 1.3
    # sqrt(batch * classes / 6): unit-variance pre-activations, ReLU, default Linear init.
    assert all(abs(v / math.sqrt(10 * 102 / 6) - 1) < 0.2 for v in values)


def test_depth_zero_is_the_bare_classifier_shared_by_every_norm(
    rows: list[dict[str, Any]],
) -> None:
    depth0 = [r for r in rows if r["depth"] == 0]
    assert {r["builder"] for r in depth0} == {"linear"}
    assert len({r["output_norm"] for r in depth0}) == 1
    assert {r["builder"] for r in rows if r["depth"] > 0} == {"growlab"}
    assert all(r["growlab_blocks"] == r["depth"] for r in rows)


def test_measurements_follow_the_mean_field_prediction(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        assert r["output_norm"] == pytest.approx(r["predicted_output_norm"], rel=0.25), r


def test_without_biases_the_unnormalised_output_decays_towards_zero() -> None:
    none = by_norm(measure_output_norms(**SMALL, norms=("none",), zero_bias=True), "none")
    assert all(b < a for a, b in zip(none, none[1:], strict=False))
    assert none[-1] / none[0] < 0.02  # (1/sqrt(6))^6 ~ 0.005


def test_the_measurement_is_reproducible_and_seeds_average() -> None:
    kwargs: dict[str, Any] = {"input_dim": 32, "width": 16, "max_depth": 2, "seeds": (3, 4)}
    first, second = measure_output_norms(**kwargs), measure_output_norms(**kwargs)
    assert first == second
    assert all(r["n_seeds"] == 2 and len(r["per_seed_output_norm"]) == 2 for r in first)
    assert all(r["output_norm_std"] > 0 for r in first)
    assert derived_seed(0, 0) != derived_seed(0, 1, 0)


def test_prediction_at_depth_zero_is_the_linear_layer_variance() -> None:
    # Var = E[x^2] * fan_in / (3 fan_in) + 1 / (3 fan_in) per output entry.
    expected = math.sqrt(10 * 102 * (1 / 3 + 1 / (3 * 49152)))
    assert predicted_output_norm(0, "none", 1.0, 49152, 512, 10, 102) == pytest.approx(expected)


def test_cli_writes_csv_json_and_png(tmp_path: Path) -> None:
    out = tmp_path / "study"
    args = ["--out", str(out), "--input-dim", "64", "--width", "32", "--max-depth", "3"]
    proc = subprocess.run(
        [sys.executable, "-m", "growlab.norm_study", *args, "--n-seeds", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    with open(out / "norm_study.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 * 3
    assert {"depth", "norm", "output_norm", "output_norm_std"} <= set(table[0])
    report = json.loads((out / "norm_study.json").read_text())
    assert report["config"]["input_dim"] == 64 and len(report["rows"]) == 12
    assert (out / "norm_study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = proc.stdout.splitlines()[1].split()
    assert header == ["depth", "none", "batch", "layer"]
