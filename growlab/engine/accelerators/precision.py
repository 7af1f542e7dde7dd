"""Float32 matrix products in full precision unless a run asks for TF32 (`train.tf32=true`).

PyTorch lets cuDNN convolutions use TF32 by default and cuBLAS matmuls not; growlab sets both
from the one option so a run's numbers do not depend on which kind of layer it has, and the
summary records which was used (`tf32`)."""

from __future__ import annotations

import torch


def set_tf32(enabled: bool, device: torch.device) -> bool:
    """Allow TF32 matmuls and convolutions exactly when `enabled`; whether a GPU uses it."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    return enabled and device.type == "cuda"
