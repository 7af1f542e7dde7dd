"""Model families: registered by name from the code, or named by `_target_` in a model YAML.
A researcher's own family (examples/my_models/resmlp.py + examples/conf/model/resmlp.yaml)
runs through the real entry point from outside growlab, grows, trains as a stack of seeds
equal to its solo runs, reloads from its checkpoints, and is refused data it does not take."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from conftest import REPO, read_summary, sweep_runs
from test_stacked import first_epoch_loss
from test_user_operator import run_user, user_env

from growlab.config import ConfigError
from growlab.engine.stacking.forward import StackedNet
from growlab.growth.families import (
    IMAGES,
    SIGNALS,
    VECTORS,
    ModelFamily,
    family_names,
    family_of,
    register_family,
)
from growlab.growth.nets import build_network, initial_arch

SEARCHPATH = f"hydra.searchpath=[file://{REPO / 'examples' / 'conf'}]"
RESMLP = [SEARCHPATH, "model=resmlp", "data=blobs", "logger=none"]
GROWN = ["strategy=freeze-all-but-new", "depth=3", "train.epochs_per_stage=2"]


def test_builtin_families_are_registered_and_say_what_data_they_take() -> None:
    assert {"mlp", "cnn", "backbone"} <= set(family_names())
    takes = {
        name: [family_of({"name": name}).accepts(r) for r in (VECTORS, SIGNALS, IMAGES)]
        for name in ("mlp", "cnn", "backbone")
    }
    assert takes == {
        "mlp": [True, True, True],
        "cnn": [False, True, True],
        "backbone": [False, False, True],
    }


def test_an_unknown_family_names_itself_and_the_registered_ones() -> None:
    with pytest.raises(ConfigError) as err:
        family_of({"name": "transformer"})
    message = str(err.value)
    assert "model=transformer is not a registered model family" in message
    assert "backbone, cnn, gpt, mlp" in message and "model._target_=" in message


def test_a_second_family_under_a_taken_name_is_an_error() -> None:
    class Other(ModelFamily):
        name: ClassVar[str] = "mlp"

    with pytest.raises(ValueError, match="registered twice"):
        register_family(Other)


def test_the_family_by_target_stacks_its_own_block_exactly() -> None:
    sys.path.insert(0, str(REPO / "examples"))
    try:
        model = {"_target_": "my_models.resmlp.ResidualMLP", "name": "resmlp", "norm": "layer"}
        family = family_of(model)
        model = family.complete(model)
    finally:
        sys.path.remove(str(REPO / "examples"))
    assert model["expansion"] == 2 and model["width"] == 64  # the family's schema's defaults
    assert "resmlp" in family_names()
    nets = [build_network(initial_arch(model, (40,), 3, 2)) for _ in range(2)]
    names = [n for n, _ in nets[0].named_parameters()]
    tensors = {n: torch.stack([dict(net.named_parameters())[n] for net in nets]) for n in names}
    x = torch.randn(2, 5, 40)
    stacked = StackedNet(nets[0], tensors)(x)
    for r, net in enumerate(nets):
        torch.testing.assert_close(stacked[r], net(x[r]))


def run_sweep(args: list[str], sweep: Path) -> list[Path]:
    result = run_user(["-m", *args, f"hydra.sweep.dir={sweep}"], cwd=sweep.parent)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return sweep_runs(sweep)


def test_a_user_family_grows_solo_and_stacked_from_outside_growlab(tmp_path) -> None:
    common = [*RESMLP, *GROWN, "model.norm=batch", "seed=0,1"]
    solo = run_sweep(common, tmp_path / "solo")
    stack = run_sweep([*common, "hydra.sweeper.stack_seeds=true"], tmp_path / "stack")
    for solo_run, stacked_run in zip(solo, stack, strict=True):
        summary = read_summary(stacked_run)
        assert summary["status"] == "completed" and summary["model"] == "resmlp"
        assert summary["stack_size"] == 2 and read_summary(solo_run)["stack_size"] == 1
        assert [s["depth"] for s in summary["stages"]] == [1, 2, 3]
        # Its code is part of the run's identity, as a user operator's is.
        assert "code.my_models.resmlp.ResidualMLP" in summary["config"]
        assert summary["config_fingerprint"] == read_summary(solo_run)["config_fingerprint"]
        assert first_epoch_loss(stacked_run) == pytest.approx(first_epoch_loss(solo_run), rel=1e-4)
    # Checkpoints rebuild the user's blocks from the run's config.
    evaluate = subprocess.run(
        [sys.executable, "-m", "growlab.evaluate", str(solo[0])],
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
    )
    assert evaluate.returncode == 0 and "reproduced" in evaluate.stdout, evaluate.stderr[-2000:]


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            ["data=digits"],
            "model=resmlp needs vector or 1-D signal data, got data=digits (image data); "
            "valid choices: blobs, mnist1d",
        ),
        (
            ["+model.depthwise=true"],
            "model=resmlp: model.depthwise: Key 'depthwise' not in 'ResidualMLPConfig'",
        ),
        (
            ["strategy=identity-insert"],
            "operator IdentityBlock sets growlab's Block (op -> norm -> activation); "
            "model=resmlp's blocks are ResidualMLPBlock",
        ),
    ],
    ids=["data", "key", "operator"],
)
def test_a_user_family_is_refused_before_any_work(bad, message, tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = run_user([*RESMLP, *GROWN, *bad, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stdout and "Traceback" not in result.stdout
    assert not (run_dir / "checkpoints").exists()
