"""Start-up hygiene: a run imports only what it uses; the lean optimizer path changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

HEAVY = ("torch._dynamo", "sklearn", "wandb", "torch.utils.flop_counter")

RUN_AND_LIST_IMPORTS_TEMPLATE = """
import json, runpy, sys
HEAVY = %s
sys.argv = ["growlab", *sys.argv[1:]]
try:
    runpy.run_module("growlab", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps([m for m in HEAVY if m in sys.modules]))
"""


RUN_AND_LIST_IMPORTS = RUN_AND_LIST_IMPORTS_TEMPLATE.replace("%s", repr(HEAVY))


def imported_by_run(tmp_path: Path, run: str, *overrides: str) -> list[str]:
    env = {**os.environ, "GROWLAB_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_AND_LIST_IMPORTS,
            "logger=none",
            "train.epochs_per_stage=1",
            f"hydra.run.dir={tmp_path / run}",
            *overrides,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((tmp_path / run / "summary.json").read_text())["status"] == "completed"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_growlab_pulls_in_nothing_heavy() -> None:
    code = f"import sys, growlab, growlab.__main__; print([m for m in {HEAVY} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_run_skips_dynamo_wandb_sklearn_and_the_flop_counter_once_cached(tmp_path: Path) -> None:
    counter = "torch.utils.flop_counter"
    first = imported_by_run(tmp_path, "cold")
    assert first == ["sklearn", counter]  # digits built from scikit-learn, FLOPs counted...
    assert imported_by_run(tmp_path, "warm") == []  # ...and both read from the cache after that
    assert imported_by_run(tmp_path, "blobs", "data=blobs") == ["sklearn", counter]
    assert imported_by_run(tmp_path, "blobs2", "data=blobs", "seed=1") == []
    # AdamW inherits Adam's step; an LR scheduler wraps the optimizer's step.
    cosine = imported_by_run(tmp_path, "adamw", "optimizer=adamw", "scheduler=cosine")
    assert cosine == []


LEAN_VS_TORCH = """
import sys, torch
from growlab.engine.accelerators.no_dynamo import make_lean

def train(cls, **kw):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    opt = cls(net.parameters(), lr=0.05, **kw)
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    state = opt.state_dict()
    opt.load_state_dict(state)
    return [p.detach().clone() for p in net.parameters()], torch.is_grad_enabled()

cases = [(torch.optim.Adam, {}), (torch.optim.AdamW, {"weight_decay": 0.1}),
         (torch.optim.SGD, {"momentum": 0.9, "nesterov": True})]
for cls, _ in cases:
    make_lean(cls)
lean = [train(cls, **kw) for cls, kw in cases]
assert "torch._dynamo" not in sys.modules, "the lean path imported torch._dynamo"
import torch._dynamo  # from here on torch's own wrappers run
wrapped = [train(cls, **kw) for cls, kw in cases]
for (a, grad_a), (b, grad_b) in zip(lean, wrapped):
    assert grad_a and grad_b
    assert all(torch.equal(p, q) for p, q in zip(a, b))
print("ok")
"""


def test_lean_optimizer_steps_equal_torchs_own_to_the_bit() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LEAN_VS_TORCH], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_a_damaged_flop_memo_is_ignored_and_replaced(tmp_path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "flops.json").write_text("{not json")
    assert "torch.utils.flop_counter" in imported_by_run(tmp_path, "run")
    import json as _json

    memo = _json.loads((tmp_path / "cache" / "flops.json").read_text())
    assert all(isinstance(v, int) and v >= 0 for v in memo.values()) and max(memo.values()) > 0
