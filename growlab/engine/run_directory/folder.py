"""What a run directory already holds, read and checked before a run touches it.

A run directory may hold a finished result, a run to resume, or damage (a truncated checkpoint
or metrics file). `inspect` reads it without writing: a damaged file or a result of a different
config is a `RunDirError` naming the file or the keys that differ, so the caller can refuse and
leave everything as it was. `RunDirLock` keeps two processes out of one directory. Hydra
rewrites `.hydra/` on every start, before growlab runs; `backup_hydra`/`restore_hydra` keep the
first start's copy so a refused rerun leaves the run's recorded config as it was.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from growlab.engine.files import umask_mode
from growlab.engine.run_directory import checkpoint as ckpt
from growlab.engine.run_directory.result_identity import (  # noqa: F401 - this module's public names
    NOT_RESULT,
    RESULT_GROUPS,
    fingerprint,
    recorded_config,
    result_config,
)

FINISHED = ("completed", "diverged")
HYDRA_BACKUP = Path("checkpoints") / "hydra"


class RunDirError(Exception):
    """The run directory cannot be used as asked; the message says why and what to do."""


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`key: old -> new` for every key whose value differs (absent on one side included)."""
    old, new = recorded_config(old), recorded_config(new)
    keys = sorted(set(old) | set(new))
    missing = "(absent)"
    return [
        f"{k}: {old.get(k, missing)} -> {new.get(k, missing)}"
        for k in keys
        if old.get(k, missing) != new.get(k, missing)
    ]


@dataclass
class Existing:
    """What the directory holds: its summary and its `last` checkpoint (None when absent)."""

    summary: dict[str, Any] | None
    last: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.summary is not None and self.summary.get("status") in FINISHED

    @property
    def empty(self) -> bool:
        return self.summary is None and self.last is None


def _reason(exc: BaseException) -> str:
    """The first sentence of an exception's message (torch's are paragraphs)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(". ")[0]


def _restart_hint(path: Path) -> str:
    return (
        f"move it away, or rerun with resume=restart to discard {path.parent} and start over, "
        "or choose another hydra.run.dir"
    )


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
        return summary
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is unreadable ({exc}); {_restart_hint(path)}") from None


def _read_last(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "checkpoints" / ckpt.LAST
    if not path.exists():
        return None
    try:
        last = ckpt.load_last(run_dir)
        if not isinstance(last, dict) or "progress" not in last:
            raise ValueError("not a growlab checkpoint")
        return last
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same refusal
        raise RunDirError(f"{path} is damaged ({_reason(exc)}); {_restart_hint(path)}") from None


def _check_metrics(run_dir: Path, rows: int) -> None:
    path = run_dir / "metrics.jsonl"
    try:
        lines = path.read_text().splitlines()[:rows] if path.exists() else []
        for line in lines:
            json.loads(line)
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is damaged ({exc}); {_restart_hint(path)}") from None
    if len(lines) < rows:
        raise RunDirError(
            f"{path} has {len(lines)} rows but checkpoints/last.pt recorded {rows} "
            f"(truncated); {_restart_hint(path)}"
        )


def _check_stage_checkpoints(run_dir: Path, stages: list[dict[str, Any]]) -> None:
    for record in stages:
        path = ckpt.stage_path(run_dir, record["stage"])
        try:
            if not zipfile.is_zipfile(path):
                raise ValueError("not a complete torch checkpoint")
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # noqa: BLE001
            raise RunDirError(
                f"{path} is damaged ({_reason(exc)}); {_restart_hint(path)}"
            ) from None


def inspect(run_dir: Path, config: dict[str, Any]) -> Existing:
    """Read what `run_dir` holds; refuse damage and results of another config."""
    existing = Existing(_read_summary(run_dir), None)
    if existing.finished:
        recorded = existing.summary.get("config") if existing.summary else None
        _check_same_config(run_dir, recorded, config, existing.summary)
        return existing
    existing.last = _read_last(run_dir)
    if existing.last is not None:
        _check_same_config(run_dir, existing.last.get("config"), config, existing.summary)
        _check_metrics(run_dir, existing.last["metrics_rows"])
        _check_stage_checkpoints(run_dir, existing.last["progress"]["stages"])
    return existing


def _check_same_config(
    run_dir: Path,
    recorded: dict[str, Any] | None,
    config: dict[str, Any],
    summary: dict[str, Any] | None,
) -> None:
    if recorded is None:
        return  # written before growlab recorded configs: nothing to compare
    diff = config_diff(recorded, config)
    if diff:
        status = (summary or {}).get("status", "unfinished")
        raise RunDirError(
            f"{run_dir} holds a {status} run of a different config ({'; '.join(diff)}); "
            "use another hydra.run.dir, or resume=restart to discard it"
        )


def clear(run_dir: Path) -> None:
    """resume=restart: remove the previous run's results so the run starts over."""
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    for name in ("summary.json", "metrics.jsonl"):
        (run_dir / name).unlink(missing_ok=True)


def backup_hydra(run_dir: Path) -> None:
    """Keep the config Hydra recorded at this run's first start."""
    source = run_dir / ".hydra"
    if source.is_dir():
        target = run_dir / HYDRA_BACKUP
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


def restore_hydra(run_dir: Path) -> None:
    """Put the run's recorded config back after Hydra rewrote it for a refused rerun."""
    backup = run_dir / HYDRA_BACKUP
    if backup.is_dir():
        for path in backup.iterdir():
            shutil.copy2(path, run_dir / ".hydra" / path.name)


class RunDirLock:
    """An exclusive lock on the run directory for the life of the run (released on exit)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".growlab.lock"
        self.fd: int | None = None

    def __enter__(self) -> RunDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, umask_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(
                f"another growlab process is running in {self.path.parent}; wait for it to "
                "finish or choose another hydra.run.dir"
            ) from None
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
