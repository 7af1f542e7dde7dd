"""The user's config folders (GROWLAB_CONFIG_PATH, or hydra.searchpath) count whatever the
order of the arguments, and --help lists their options with growlab's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from hydra._internal.config_search_path_impl import ConfigSearchPathImpl

from growlab.cli.search_path import ENV, MAIN
from hydra_plugins.growlab_searchpath.growlab_searchpath import GrowlabSearchPathPlugin

EXAMPLES = REPO / "examples"
USER_CONF = EXAMPLES / "conf"


def growlab(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
    environ = {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline", **env}
    if ENV not in env:
        environ.pop(ENV, None)
    return subprocess.run(
        [sys.executable, "-m", "growlab", *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["strategy=rezero-insert", "--cfg", "job"],
        ["--cfg", "job", "strategy=rezero-insert"],
        ["--cfg=job", "strategy=rezero-insert", "depth=2"],
    ],
)
def test_the_environment_folder_counts_in_any_argument_order(tmp_path, args) -> None:
    result = growlab(args, tmp_path, GROWLAB_CONFIG_PATH=str(USER_CONF))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "name: rezero-insert" in result.stdout
    assert "_target_: my_growth.ops.ReZeroResidual" in result.stdout


def test_a_sweep_with_the_flag_after_the_overrides_finds_the_users_strategy(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    args = ["strategy=rezero-insert", "debug=fast", "depth=2", f"hydra.sweep.dir={sweep}", "-m"]
    result = growlab(args, tmp_path, GROWLAB_CONFIG_PATH=os.path.relpath(USER_CONF, tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    (summary,) = [json.loads(p.read_text()) for p in sweep.glob("*/summary.json")]
    assert summary["status"] == "completed" and summary["operator"] == "ReZeroResidual"


def help_line(result: subprocess.CompletedProcess, group: str) -> list[str]:
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = [x for x in result.stdout.splitlines() if x.startswith(f"{group}: ")]
    return line.split(": ", 1)[1].split(", ")


@pytest.mark.slow
def test_help_lists_the_users_options_from_either_search_path(tmp_path) -> None:
    own = tmp_path / "conf" / "experiment"
    own.mkdir(parents=True)
    (own / "my_sweep.yaml").write_text("# @package _global_\ndepth: 2\n")
    folders = os.pathsep.join([str(USER_CONF), str(tmp_path / "conf")])
    from_env = growlab(["--help"], tmp_path, GROWLAB_CONFIG_PATH=folders)
    assert {"rezero-insert", "identity-then-finetune", "identity-insert"} <= set(
        help_line(from_env, "strategy")
    )
    assert "my_sweep" in help_line(from_env, "experiment")
    given = f"hydra.searchpath=[file://{USER_CONF}]"
    for args in (["--help", given], [given, "-h"]):
        assert "rezero-insert" in help_line(growlab(args, tmp_path), "strategy")
    assert "rezero-insert" not in help_line(growlab(["--help"], tmp_path), "strategy")


def test_a_missing_environment_folder_is_named_and_left_out(tmp_path) -> None:
    env = {ENV: os.pathsep.join([str(tmp_path / "nope"), str(USER_CONF)])}
    result = growlab(["strategy=rezero-insert", "--cfg", "job"], tmp_path, **env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{ENV}: {tmp_path / 'nope'} is not a folder; left out" in result.stderr


def test_cfg_with_multirun_is_one_line_refused(tmp_path) -> None:
    result = growlab(["-m", "depth=2", "--cfg", "job"], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "give it without -m" in result.stderr


def test_only_growlabs_own_app_gets_the_folders(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    other = ConfigSearchPathImpl()
    other.append("main", "file://somewhere/else")
    GrowlabSearchPathPlugin().manipulate_search_path(other)
    assert [e.path for e in other.get_path()] == ["file://somewhere/else"]
    ours = ConfigSearchPathImpl()
    ours.append("main", MAIN)
    GrowlabSearchPathPlugin().manipulate_search_path(ours)
    assert [e.path for e in ours.get_path()] == [MAIN, f"file://{tmp_path}"]
