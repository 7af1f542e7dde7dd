"""A researcher's own data set, one module and one YAML in their own package (examples/my_data,
examples/conf/data/moons.yaml), runs through the real entry point from outside growlab with no
edit inside it; what cannot take it, or a wrong key, is refused before any work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, compose_cfg, read_summary, sweep_runs

from growlab.config import ConfigError, DataConfig
from growlab.data import DataKind, load_data, register_dataset, registry
from growlab.engine.run_directory.result_identity import fingerprint, result_config
from growlab.validation import validate

EXAMPLES = REPO / "examples"
SEARCHPATH = f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]"
FAST = ["train.epochs_per_stage=2", "depth=2", "logger=none"]


def user_env() -> dict[str, str]:
    # examples/ before whatever growlab is found through already.
    path = os.pathsep.join(p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}


def run_user(args: list[str], cwd: Path, module: str = "growlab") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def examples_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Data sets a test registers are gone after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_user_data_set_sweeps_and_replays_through_the_cli(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_user(
        ["-m", SEARCHPATH, "data=moons", "seed=0,1", *FAST, f"hydra.sweep.dir={sweep}"], tmp_path
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = sweep_runs(sweep)
    summaries = [read_summary(r) for r in runs]
    assert [s["data"] for s in summaries] == ["moons", "moons"]
    assert all(s["status"] == "completed" for s in summaries)
    config = summaries[0]["config"]
    assert config["data.module"] == "my_data.moons" and config["data.noise"] == 0.2
    assert config["data.val_fraction"] == 0.1  # growlab's common keys, from data_common
    assert "code.my_data.moons" in config  # editing the module is a changed run
    # 1000 moons, 30% held out for test: the test accuracy is a multiple of 1/300.
    assert round(summaries[0]["test_acc"] * 300, 6).is_integer()
    # The run is rebuilt and re-evaluated from its config, the user's data set found again.
    evaluate = run_user([str(runs[0])], tmp_path, module="growlab.evaluate")
    assert evaluate.returncode == 0 and "reproduced" in evaluate.stdout, evaluate.stderr[-2000:]


def test_a_model_that_cannot_take_the_data_set_is_refused_up_front(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_user(
        [SEARCHPATH, "data=moons", "model=cnn", *FAST, f"hydra.run.dir={run_dir}"], tmp_path
    )
    assert result.returncode == 2
    assert (
        "model=cnn needs image or 1-D signal data, got data=moons (vector data); valid choices: "
        "cifar10, digits, fashion_mnist, flowers102, mnist, mnist1d"
    ) in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+data.nois=0.3", "data.nois is not a key of data=moons (MoonsConfig); nearest valid "),
        ("data.noise=abc", "data.noise: Value 'abc' of type 'str' could not be converted"),
        ("data.module=my_data.nope", "data.module=my_data.nope cannot be imported"),
        ("data.name=nope", "data.name=nope is not a registered data set; data.module=my_data"),
    ],
)
def test_a_wrong_key_type_or_name_of_a_user_data_set_is_one_line(
    examples_importable: None, override: str, message: str
) -> None:
    cfg = compose_cfg([SEARCHPATH, "data=moons", override])
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        validate(cfg, environment=False)


def test_an_unknown_name_lists_the_registered_data_sets() -> None:
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg(["data.name=imagenet"]), environment=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("data.name=imagenet is not a registered")
    assert "blobs, cifar10, digits, fashion_mnist, flowers102, mnist, mnist1d" in message


def test_the_user_data_set_loads_as_normalised_vectors(examples_importable: None) -> None:
    data = load_data(compose_cfg([SEARCHPATH, "data=moons", "data.n_samples=200"]).data)
    assert data.input_shape == (2,) and data.num_classes == 2
    assert len(data.x_train) + len(data.x_val) == 140 and len(data.x_test) == 60
    assert abs(float(data.x_train.mean())) < 0.05


def test_editing_the_user_module_changes_the_fingerprint(tmp_path: Path, monkeypatch) -> None:
    shutil.copytree(EXAMPLES / "my_data", tmp_path / "their_data")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = compose_cfg([SEARCHPATH, "data=moons", "data.module=their_data.moons"])
    before = fingerprint(result_config(cfg))  # the module is hashed, not imported
    assert "their_data.moons" not in sys.modules
    source = tmp_path / "their_data" / "moons.py"
    source.write_text(source.read_text().replace("noise: float = 0.2", "noise: float = 0.3"))
    assert fingerprint(result_config(cfg)) != before


def test_a_loader_whose_arrays_do_not_fit_its_kind_is_refused(scratch_registry: None) -> None:
    @register_dataset(DataKind.image)
    def flat_images(cfg: DataConfig) -> registry.Arrays:
        x, y = np.zeros((10, 64), np.float32), np.arange(10) % 2
        return x, y, x, y

    with pytest.raises(ConfigError, match=r"registered as image data, but its loader .*\(10, 64\)"):
        load_data(compose_cfg(["data=digits", "data.name=flat_images"]).data)


def test_one_name_registered_by_two_loaders_is_refused(scratch_registry: None) -> None:
    def digits(cfg: DataConfig) -> registry.Arrays:
        raise AssertionError("never loaded")

    with pytest.raises(ValueError, match="data set digits is registered twice"):
        register_dataset(DataKind.image)(digits)
