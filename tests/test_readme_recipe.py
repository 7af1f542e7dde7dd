"""README's "Add a growth operator" recipe is true as written: its strategy YAML is the example
file, that file writes out every key that changes the result, and its commands run."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from omegaconf import OmegaConf

from growlab.config import StrategyConfig

EXAMPLE_YAML = REPO / "examples" / "conf" / "strategy" / "rezero-insert.yaml"
# Read by conv-multiplicative's operator only (seed 001's gate); nothing else uses it.
NOT_A_RESULT_KEY = {"literal_seed_init"}


def recipe() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Add a growth operator\n")
    return text[start : text.index("\n## ", start + 1)]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", recipe(), flags=re.DOTALL)


def test_the_readme_shows_the_example_strategy_yaml_exactly() -> None:
    assert blocks("yaml") == [EXAMPLE_YAML.read_text()]


def test_the_example_strategy_writes_out_every_key_of_the_schema_and_operator() -> None:
    written = OmegaConf.to_container(OmegaConf.load(EXAMPLE_YAML))
    assert isinstance(written, dict)
    schema = {f.name for f in dataclasses.fields(StrategyConfig)} - NOT_A_RESULT_KEY
    assert set(written) - {"defaults"} == schema
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from my_growth.ops import ReZeroResidual
    finally:
        sys.path.remove(str(REPO / "examples"))
    fields = {f.name for f in dataclasses.fields(ReZeroResidual)}
    assert set(written["operator"]) == {"_target_", *fields}


def readme_commands() -> list[tuple[dict[str, str], list[str]]]:
    """The recipe's run commands: (environment assignments, argv), help lines left out."""
    commands = []
    for line in blocks("bash")[0].splitlines():
        words = shlex.split(line, comments=True)
        env = {}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if words and "--help" not in words:
            commands.append((env, words))
    return commands


def test_the_recipe_commands_run_as_written(tmp_path: Path) -> None:
    commands = readme_commands()
    assert len(commands) == 2 and all(c[1][:3] == ["python", "-m", "growlab"] for c in commands)
    for i, (assigned, argv) in enumerate(commands):
        # Run from the repository, the project holding examples/; a PYTHONPATH already set
        # (a growlab checkout) stays after the command's own.
        env = {**os.environ, **assigned, "WANDB_MODE": "offline"}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (assigned.get("PYTHONPATH"), os.environ.get("PYTHONPATH")) if p
        )
        run_dir = tmp_path / f"run{i}"
        result = subprocess.run(
            [sys.executable, *argv[1:], "debug=fast", "depth=2", f"hydra.run.dir={run_dir}"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["operator"] == "ReZeroResidual"


@pytest.mark.parametrize("line", ["PYTHONPATH=examples", "hydra.searchpath=", "GROWLAB_CONFIG"])
def test_the_recipe_says_how_the_users_code_and_configs_are_found(line: str) -> None:
    assert line in blocks("bash")[0]
