"""TF32 only when a run asks for it (`train.tf32`), and the summary says which was used."""

from __future__ import annotations

import pytest
import torch
from conftest import run_in_process

from growlab.engine.accelerators.precision import set_tf32


@pytest.fixture(autouse=True)
def _restore_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_the_option_sets_matmuls_and_convolutions_alike() -> None:
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's own default for convolutions
    assert set_tf32(False, torch.device("cuda")) is False
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert set_tf32(True, torch.device("cuda")) is True
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert set_tf32(True, torch.device("cpu")) is False  # no TF32 on a CPU


def test_a_run_records_full_float32_by_default(tmp_path) -> None:
    torch.backends.cudnn.allow_tf32 = True
    summary = run_in_process(["debug=fast", "logger=none", "model=cnn"], tmp_path)
    assert summary["status"] == "completed"
    assert summary["tf32"] is False
    assert "train.tf32" not in summary["config"]  # the default keeps earlier fingerprints
    assert not torch.backends.cudnn.allow_tf32
