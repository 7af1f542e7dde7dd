"""Which jobs of a sweep to launch: one per distinct run, each in a folder of its own.

Run folders are named by the run's config fingerprint (conf/hydra/default.yaml), so rerunning or
extending a sweep into the same folder finds every finished run where it left it. Two jobs with
the same fingerprint are one run: it is launched once and the duplicate is said. Two jobs with
different configs that would write to one folder (a `hydra.sweep.subdir` that does not tell
them apart) refuse the sweep before anything starts. (No `from __future__ import annotations`:
see growlab_sweeper's docstring.)
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

SWEEP_RUNS_FILE = ".growlab_sweep_runs.json"


@dataclass
class RunPlan:
    jobs: list[Sequence[str]] = field(default_factory=list)  # in launch order
    stacks: list[list[Sequence[str]]] = field(default_factory=list)  # stack_seeds only
    folders: list[str] = field(default_factory=list)  # each job's run folder, same order
    duplicates: list[str] = field(default_factory=list)  # one line per job not launched
    conflicts: list[str] = field(default_factory=list)  # one line per shared folder


def plan_runs(
    jobs: Sequence[Sequence[str]], configs: Sequence[DictConfig], stack_seeds: bool
) -> RunPlan:
    from growlab.engine.run_directory.result_identity import fingerprint, result_config

    plan = RunPlan()
    first_of: dict[str, int] = {}
    kept: list[tuple[Sequence[str], DictConfig, str]] = []
    for num, (job, cfg) in enumerate(zip(jobs, configs, strict=True)):
        print_ = fingerprint(result_config(cfg))
        if print_ in first_of:
            plan.duplicates.append(
                f"job {num} ({' '.join(job)}) is the same run as job {first_of[print_]} "
                f"(config fingerprint {print_}): run once"
            )
            continue
        first_of[print_] = num
        kept.append((job, cfg, print_))
    if stack_seeds:
        plan.stacks = seed_stacks([job for job, _, _ in kept])
        order = {id(job): i for i, job in enumerate(job for stack in plan.stacks for job in stack)}
        kept.sort(key=lambda item: order[id(item[0])])
    owner: dict[str, int] = {}
    for num, (job, cfg, _) in enumerate(kept):
        folder = run_folder(cfg, num)
        if folder in owner:
            plan.conflicts.append(
                f"jobs {owner[folder]} and {num} ({' '.join(job)}) are different runs but "
                f"hydra.sweep.subdir names both {folder!r}; valid: a subdir that tells them "
                "apart, e.g. the default one, which ends in the config fingerprint"
            )
        owner.setdefault(folder, num)
        plan.jobs.append(job)
        plan.folders.append(folder)
    return plan


def run_folder(cfg: DictConfig, num: int) -> str:
    """The folder the launcher will give job number `num` (relative to the sweep folder)."""
    with open_dict(cfg):  # as the launcher sets them; each composed config is a fresh copy
        cfg.hydra.job.num = num
        cfg.hydra.job.id = f"job_id_for_{num}"
    return str(OmegaConf.select(cfg, "hydra.sweep.subdir"))


def seed_stacks(jobs: Sequence[Sequence[str]]) -> list[list[Sequence[str]]]:
    """The jobs grouped by everything but their `seed=` override, in order of appearance."""
    groups: dict[tuple[str, ...], list[Sequence[str]]] = {}
    for job in jobs:
        key = tuple(o for o in job if o.split("=", 1)[0].lstrip("+~") != "seed")
        groups.setdefault(key, []).append(job)
    return list(groups.values())


def batches(jobs: Sequence[Sequence[str]], size: int | None) -> list[list[list[str]]]:
    """The jobs in launch batches of at most `size` (None: one batch), as Hydra's sweeper."""
    as_lists = [list(job) for job in jobs]
    if size is None or not as_lists:
        return [as_lists]
    return [as_lists[i : i + size] for i in range(0, len(as_lists), size)]


def write_sweep_runs(sweep_dir: Path, folders: Sequence[str]) -> None:
    path = sweep_dir / SWEEP_RUNS_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(list(folders)) + "\n")
    partial.replace(path)


def read_sweep_runs(sweep_dir: Path) -> list[str] | None:
    try:
        folders: Any = json.loads((sweep_dir / SWEEP_RUNS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return [str(f) for f in folders] if isinstance(folders, list) else None
