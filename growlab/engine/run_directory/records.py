"""The run directory's records: metrics.jsonl rows and the atomically written summary.json."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from growlab.engine.files import atomic_writer

log = logging.getLogger(__name__)


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    with atomic_writer(path) as f:
        f.write((json.dumps(_clean(data), indent=2) + "\n").encode())


class MetricsFile:
    """Appends one JSON object per line; can cut back to a known row count on resume."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0

    def truncate_to(self, rows: int) -> None:
        """Keep exactly the first `rows` lines (those recorded before the resumed checkpoint)."""
        kept: list[str] = []
        if self.path.exists():
            kept = self.path.read_text().splitlines(keepends=True)[:rows]
        if len(kept) < rows:
            raise RuntimeError(
                f"{self.path} has {len(kept)} rows but the checkpoint recorded {rows}"
            )
        self.path.write_text("".join(kept))
        self.rows = rows

    def start_fresh(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self.rows = 0

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(_clean(row)) + "\n")
            f.flush()
        self.rows += 1


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_summary(path: Path, summary: dict[str, Any]) -> bool:
    """Write summary.json unless that would replace a completed result with anything else.

    Returns whether it was written. Every summary write goes through here, so no code path
    turns a finished result into a failure.
    """
    if summary.get("status") != "completed" and path.exists():
        try:
            previous = json.loads(path.read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous == "completed":
            log.error(
                "not replacing the completed result in %s with a %s one",
                path,
                summary.get("status"),
            )
            return False
    write_json_atomic(path, summary)
    return True
