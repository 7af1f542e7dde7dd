"""Which runs a report covers: the runs of one or several sweep folders, kept or dropped by
`--include KEY=VALUE` / `--exclude KEY=VALUE`, and the keys `--pair-on` may name.

Everything here is checked before the report writes anything: a path that is not a sweep
folder, a key no run has, a value no run holds or filters that leave no run raise
`ReportInputError`, whose message is one line naming the bad value and the valid choices.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growlab.report.collect import MARKERS, RunRecord, collect
from growlab.report.formats import natural_key

# Keys every run answers from its summary (or its config's name fields).
RUN_KEYS = ("strategy", "depth", "seed", "model", "data", "operator", "primary_metric")


class ReportInputError(ValueError):
    """Input the report refuses before writing anything; the message is one line."""


def is_run_dir(path: Path) -> bool:
    """A run directory holds the output contract itself (a sweep holds run directories)."""
    return any((Path(path) / marker).exists() for marker in MARKERS)


def folder_labels(folders: Sequence[Path]) -> list[str]:
    """Run names are prefixed by their folder's name when there are several (the whole path
    where two folders share a name)."""
    names = [f.resolve().name for f in folders]
    if len(set(names)) == len(names):
        return names
    return [str(f.resolve()) for f in folders]


def collect_sweeps(folders: Sequence[Path]) -> list[RunRecord]:
    """Every run directory under the folders, each folder's runs in natural order of name."""
    for folder in folders:
        if not folder.is_dir():
            raise ReportInputError(f"directory {folder} does not exist")
        if len(folders) > 1 and is_run_dir(folder):
            raise ReportInputError(
                f"{folder} is a run directory, not a sweep folder; give the folder holding "
                "its runs (a sweep folder holds run directories)"
            )
    runs: list[RunRecord] = []
    labels = folder_labels(folders)
    for folder, label in zip(folders, labels, strict=True):
        found = collect(folder)
        if not found:
            raise ReportInputError(
                f"no run directories under {folder} (a run directory holds "
                f"{', '.join(MARKERS[:-1])} or {MARKERS[-1]}/)"
            )
        for run in found:
            if len(folders) > 1:
                run.name = f"{label}/{run.name}"
        runs += sorted(found, key=lambda r: natural_key(r.name))
    return runs


def value_of(run: RunRecord, key: str) -> Any:
    if key in RUN_KEYS:
        return getattr(run, key)
    return run.config.get(key)


def known_keys(runs: Sequence[RunRecord]) -> list[str]:
    return [*RUN_KEYS, *sorted({k for r in runs for k in r.config} - set(RUN_KEYS))]


def check_key(key: str, runs: Sequence[RunRecord], option: str) -> None:
    valid = known_keys(runs)
    if key not in valid:
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ReportInputError(
            f"{option}: unknown key {key!r}{hint}; valid keys: {', '.join(valid)}"
        )


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def matches(value: Any, wanted: str) -> bool:
    """Does a run's value equal the VALUE the user typed (0.01 equals 1e-2; true, null)?"""
    if value is None:
        return wanted in ("null", "None", "none")
    if text_of(value) == wanted or str(value) == wanted:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return math.isclose(float(wanted), float(value), rel_tol=1e-12, abs_tol=0.0)
        except ValueError:
            return False
    return False


@dataclass(frozen=True)
class Filter:
    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Filter:
        """KEY=VALUE, or a bare VALUE meaning strategy=VALUE."""
        key, sep, value = text.partition("=")
        if not sep:
            return cls("strategy", text)
        return cls(key.strip(), value.strip())

    def __str__(self) -> str:
        return f"{self.key}={self.value}"

    def matches(self, run: RunRecord) -> bool:
        return matches(value_of(run, self.key), self.value)


def conditions(text: str) -> list[Filter]:
    """`--exclude KEY=VALUE,KEY2=VALUE2`: every condition at once (a comma before `KEY=`)."""
    return [Filter.parse(part) for part in re.split(r",(?=[\w.]+=)", text)]


def values_held(runs: Sequence[RunRecord], key: str) -> str:
    held = sorted({text_of(value_of(r, key)) for r in runs}, key=natural_key)
    return ", ".join(held)


def select(
    runs: list[RunRecord], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[RunRecord]:
    """The runs every include matches (includes of one key: any of them) and no exclude does
    (an exclude of several KEY=VALUE leaves out the runs that match all of them)."""
    includes = [Filter.parse(t) for t in include]
    excludes = [conditions(t) for t in exclude]
    every_exclude = [f for group in excludes for f in group]
    for option, filters in (("--include", includes), ("--exclude", every_exclude)):
        for f in filters:
            check_key(f.key, runs, option)
            if not any(f.matches(r) for r in runs):
                raise ReportInputError(
                    f"{option} {f}: no run has {f.key}={f.value}; {f.key} values: "
                    f"{values_held(runs, f.key)}"
                )
    by_key: dict[str, list[Filter]] = {}
    for f in includes:
        by_key.setdefault(f.key, []).append(f)
    kept = [
        r
        for r in runs
        if all(any(f.matches(r) for f in group) for group in by_key.values())
        and not any(all(f.matches(r) for f in group) for group in excludes)
    ]
    if not kept:
        given = " ".join(
            [*(f"--include {f}" for f in includes), *(f"--exclude {t}" for t in exclude)]
        )
        keys = sorted({f.key for f in [*includes, *every_exclude]})
        held = "; ".join(f"{k} values: {values_held(runs, k)}" for k in keys)
        raise ReportInputError(f"{given} leaves no run; {held}")
    return kept


def parse_pair_on(text: str | None, runs: Sequence[RunRecord]) -> list[str] | None:
    """`--pair-on seed,depth`: the keys a run shares with its baseline partner (None: the
    default pairing)."""
    if text is None:
        return None
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise ReportInputError("--pair-on: no key given; give a comma list such as seed,depth")
    for key in keys:
        if key == "strategy":
            raise ReportInputError(
                "--pair-on strategy: a pair is a run and the baseline's run, which never share "
                "a strategy; give keys such as seed,depth"
            )
        check_key(key, runs, "--pair-on")
    return keys
