"""The process's exit status tells the truth: 0 all completed, 1 some run did not, 2 refused.

Hydra reports a bad override (`depth=abc`), a missing option (`experiment=nope`) or an output
folder it cannot create with several lines and exit 1, the code growlab keeps for runs that did
not complete. `one_line_refusals` wraps Hydra's reporting: an error raised before any run
started is a refusal, printed as one line naming the bad value (and the valid choices where
Hydra knows them), exit 2. Once a run has started (`work_started`), errors go to Hydra as
before; HYDRA_FULL_ERROR=1 always gives Hydra's full trace.

A sweeper other than growlab's (Optuna) does not count the runs that did not complete:
`run_finished` tallies them in this process, and `exit_if_incomplete` says how many, exit 1.
"""

from __future__ import annotations

import difflib
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

EXIT_INCOMPLETE, EXIT_REFUSED = 1, 2
# Sweep syntax only a searching sweeper (Optuna) understands.
SEARCH_SPACES = ("interval", "tag")
_started = False
_statuses: Counter[str] = Counter()


def work_started() -> None:
    """Called when a run (or a launch of runs) begins: later errors are no refusal."""
    global _started
    _started = True


def run_finished(status: str) -> None:
    """A run of a sweep ended (in this process) with `status`."""
    _statuses[status] += 1


def exit_if_incomplete(sweep: str) -> None:
    """After a sweep whose sweeper does not count: one line and exit 1 if a run did not
    complete."""
    line = _count_line(sweep)
    if line is not None:
        _error(line)
        raise SystemExit(EXIT_INCOMPLETE)


def _count_line(sweep: str) -> str | None:
    total, completed = sum(_statuses.values()), _statuses["completed"]
    if total == completed:
        return None
    detail = ", ".join(f"{n} {s}" for s, n in sorted(_statuses.items()) if s != "completed")
    return f"{sweep}: {completed} of {total} runs completed; {total - completed} did not ({detail})"


def refuse(line: str) -> NoReturn:
    """A refusal before any work: one line, exit 2."""
    _error(f"invalid configuration: {line}")
    raise SystemExit(EXIT_REFUSED)


def _error(line: str) -> None:
    sys.stderr.write(f"[growlab][ERROR] - {line}\n")


@contextmanager
def one_line_refusals() -> Iterator[None]:
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report

    def run_and_report(func: Callable[[], Any]) -> Any:
        return original(lambda: _refuse_before_work(func, hydra_utils._is_env_set))

    hydra_utils.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = original


def _refuse_before_work(func: Callable[[], Any], env_set: Callable[[str], bool]) -> Any:
    try:
        return func()
    except (HydraException, OmegaConfBaseException, OSError) as exc:
        if _started or env_set("HYDRA_FULL_ERROR"):
            raise
        _error(f"invalid configuration: {one_line(exc)}")
        raise SystemExit(EXIT_REFUSED) from None
    except (ValueError, RuntimeError) as exc:
        # Optuna has no best trial when none completed, and its grid sampler, told that the
        # grid's last trial failed, stops the study from outside a trial, which the plugin
        # does not expect: say so instead of a traceback.
        grid_stop = isinstance(exc, RuntimeError) and "Study.stop" in str(exc)
        incomplete = _statuses and not _statuses["completed"]
        if not (incomplete or grid_stop) or env_set("HYDRA_FULL_ERROR"):
            raise
        why = "nothing to optimise" if incomplete else "the grid sampler ended the search"
        _error(f"{_count_line('sweep')}; {why}, no optimization_results.yaml")
        raise SystemExit(EXIT_INCOMPLETE) from None


def one_line(exc: BaseException) -> str:
    """The message of a Hydra, OmegaConf or file-system error as one line."""
    if isinstance(exc, MissingConfigException) and exc.options is not None:
        group, _, option = str(exc.missing_cfg_file or "").rpartition("/")
        where = f"{group}={option} is not an option" if group else _lines(exc)[0]
        return f"{where}; valid choices: {', '.join(exc.options)}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot use {exc.filename}: {exc.strerror}"
    text = _lines(exc)[0]
    if isinstance(exc, OverrideParseException):
        return f"{exc.override}: {text}"
    if "does not support sweep type" in text:  # Hydra's basic sweeper names no override
        swept = [a for a in sys.argv[1:] if any(f"{k}(" in a for k in SEARCH_SPACES)]
        return f"{' '.join(swept) or text}: needs hydra/sweeper=optuna (the sweeper that searches)"
    cause = exc.__cause__
    if isinstance(cause, OmegaConfBaseException):
        text = f"{text.rstrip('.')}: {_lines(cause)[0]}{_nearest_key(cause)}"
    return text


def _lines(exc: BaseException) -> list[str]:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return [line for line in lines if "HYDRA_FULL_ERROR" not in line] or [type(exc).__name__]


def _nearest_key(cause: OmegaConfBaseException) -> str:
    """For a key a schema does not have: the nearest key it has, and all of them."""
    node, key = cause.parent_node, cause.key
    if not isinstance(node, DictConfig) or not isinstance(key, str) or key in node:
        return ""
    keys = [str(k) for k in node]
    near = difflib.get_close_matches(key, keys, n=1)
    nearest = f"; nearest valid key: {near[0]}" if near else ""
    return f"{nearest}; valid keys: {', '.join(keys)}"
