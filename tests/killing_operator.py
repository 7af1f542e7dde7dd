"""A growth operator that dies as the OOM killer kills: SIGKILL at its first growth inside a
submitit job (never in the sweeper's process, which only validates it). Tests put this folder
on the job's PYTHONPATH and name it with `strategy.operator._target_`."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from torch import nn

from growlab.growth.operators import Model, RandomBlock


@dataclass
class KilledAtGrowth(RandomBlock):
    kill: bool = False

    def make_block(self, model: Model) -> nn.Module:
        if self.kill and "SUBMITIT_LOCAL_JOB_ID" in os.environ:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().make_block(model)
