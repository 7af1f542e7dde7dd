"""From finished Optuna searches to the comparison sweep that runs each strategy tuned.

    python -m growlab.tune_to_sweep SEARCH_DIR [SEARCH_DIR ...] [--seeds 1,2,3,4,5]
        [--sweep-dir DIR] [--write CONF_DIR/experiment/NAME.yaml]

Each SEARCH_DIR is the `hydra.sweep.dir` of a finished `hydra/sweeper=optuna` search: its
`optimization_results.yaml` gives the best parameters, its best trial's run folder
(`.hydra/overrides.yaml`, `summary.json`) the strategy and every other override of the search.
Printed: one `python -m growlab -m ...` command per strategy (one Hydra multirun cannot give each
strategy its own values), all into one sweep folder (default: `compare` beside the searches),
then the report command; `| bash` runs them. Carried over: the search's overrides except the
searched keys (set to their best values) and `seed`; Hydra's settings are dropped except
`hydra.searchpath`. Seeds default to the 5 smallest that no trial of the searches used (the
best trial's network was picked on its validation score; it is not compared again).

`--write` writes the sweep as experiment files (`# @package _global_`): NAME.yaml for one
strategy, NAME_<strategy>.yaml for each of several, and prints the one command that runs them
all (`experiment=NAME_a,NAME_b`); `experiment=NAME_a` alone runs that strategy's part.

Refused in one line, exit 2, nothing written: a folder that is not a finished search, a search
without a completed trial, two searches of one strategy with different settings, bad --seeds.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from growlab.cli.tune_searches import (
    Refused,
    Search,
    one_per_strategy,
    override_key,
    parse_overrides,
    read_search,
    unpaired_settings,
)

PROG = "python -m growlab.tune_to_sweep"
GENERATED = "# written by python -m growlab.tune_to_sweep"
EXIT_REFUSED = 2
DEFAULT_SEEDS = 5
MAX_SEED = 2**32 - 1


def parse_seeds(text: str) -> list[int]:
    items = text.split(",")
    valid = all(i.strip().isdigit() and int(i) <= MAX_SEED for i in items)
    if not valid or len({int(i) for i in items}) != len(items):
        raise Refused(
            f"--seeds {text}: expected distinct integers 0..{MAX_SEED} separated by commas, "
            "e.g. 1,2,3,4,5"
        )
    return [int(i) for i in items]


def unused_seeds(searches: list[Search], n: int = DEFAULT_SEEDS) -> list[int]:
    used = set().union(*(s.seeds for s in searches))
    seeds: list[int] = []
    candidate = 0
    while len(seeds) < n:
        if candidate not in used:
            seeds.append(candidate)
        candidate += 1
    return seeds


def searchpath_override(paths: list[str]) -> list[str]:
    unique = list(dict.fromkeys(paths))
    return [f"hydra.searchpath=[{','.join(unique)}]"] if unique else []


def command(search: Search, seeds: list[int], sweep_dir: str) -> list[str]:
    tail = [f"seed={','.join(map(str, seeds))}", f"hydra.sweep.dir={sweep_dir}"]
    head = ["python", "-m", "growlab", "-m", *searchpath_override(list(search.searchpath))]
    return [*head, *search.fixed, *search.tuned, *tail]


def experiment_text(search: Search, seeds: list[int], sweep_dir: str, run: str) -> str:
    """The comparison runs of one strategy as an experiment file (`# @package _global_`)."""
    defaults: list[dict[str, Any]] = []
    body: dict[str, Any] = {}
    for override in parse_overrides((*search.fixed, *search.tuned)):
        key = override_key(override)
        if override.is_delete() or override.package is not None or key == "experiment":
            raise Refused(
                f"--write: {override.input_line} (from {search.folder}) has no equivalent in an "
                "experiment file; run the printed commands instead"
            )
        if key in search.groups:
            defaults.append({f"override /{key}": override.value()})
        else:
            _put(body, key.split("."), override.value())
    tuned = " ".join(search.tuned)
    head = [
        "# @package _global_",
        GENERATED,
        f"# {search.strategy} tuned in {search.folder} ({search.metric} {search.value:.4g}): "
        f"{tuned}",
        f"# run: {run}",
    ]
    sweep = {"hydra": {"sweep": {"dir": sweep_dir}, "sweeper": {"params": {}}}}
    sweep["hydra"]["sweeper"]["params"]["seed"] = ",".join(map(str, seeds))
    parts = [{"defaults": defaults}] if defaults else []
    parts += [body, sweep]
    text = "".join(yaml.safe_dump(p, sort_keys=False, width=1000) for p in parts if p)
    return "\n".join(head) + "\n" + text


def _put(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def write_experiments(
    path: Path, searches: list[Search], seeds: list[int], sweep_dir: str
) -> list[str]:
    """Writes the experiment file(s); returns the command that runs them all."""
    if path.suffix != ".yaml" or path.parent.name != "experiment":
        raise Refused(f"--write {path}: expected CONF_DIR/experiment/NAME.yaml")
    conf_dir = path.parent.parent
    names = [path.stem] if len(searches) == 1 else [f"{path.stem}_{s.strategy}" for s in searches]
    targets = [path.with_name(f"{n}.yaml") for n in names]
    for target in targets:
        if target.exists() and GENERATED not in target.read_text(errors="replace")[:200]:
            raise Refused(f"--write: {target} exists and was not written by {PROG}")
    ours = conf_dir.resolve() == Path(str(files("growlab.conf"))).resolve()
    extra = [] if ours else [f"file://{conf_dir}"]
    paths = extra + [p for s in searches for p in s.searchpath]
    base = ["python", "-m", "growlab", "-m", *searchpath_override(paths)]
    texts = [
        experiment_text(s, seeds, sweep_dir, _shell([*base, f"experiment={n}"]))
        for s, n in zip(searches, names, strict=True)
    ]
    run = [*base, f"experiment={','.join(names)}"]
    if len(names) > 1:
        run += [f"seed={','.join(map(str, seeds))}", f"hydra.sweep.dir={sweep_dir}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, text in zip(targets, texts, strict=True):
        target.write_text(text)
        print(f"wrote {target}", file=sys.stderr)
    return run


def default_sweep_dir(folders: list[Path]) -> str:
    given = [str(f.parent) for f in folders]
    if len({os.path.isabs(g) for g in given}) > 1:
        given = [str(f.resolve().parent) for f in folders]
    return os.path.join(os.path.commonpath(given), "compare")


def _shell(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("searches", type=Path, nargs="+", metavar="OPTUNA_SWEEP_DIR")
    parser.add_argument("--seeds", help="comma-separated (default: 5 seeds no trial used)")
    parser.add_argument(
        "--sweep-dir", help="where the comparison runs go (default: compare beside the searches)"
    )
    parser.add_argument("--write", type=Path, metavar="CONF_DIR/experiment/NAME.yaml")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        searches = one_per_strategy([read_search(f) for f in args.searches])
        sweep_dir = args.sweep_dir or default_sweep_dir(args.searches)
        inside = [s.folder for s in searches if Path(sweep_dir).resolve() == s.folder.resolve()]
        if inside:
            raise Refused(f"--sweep-dir {sweep_dir} is a search folder; choose another")
        seeds = seeds if seeds is not None else unused_seeds(searches)
        if (note := unpaired_settings(searches)) is not None:
            print(note, file=sys.stderr)
        if args.write is not None:
            commands = [write_experiments(args.write, searches, seeds, sweep_dir)]
        else:
            commands = [command(s, seeds, sweep_dir) for s in searches]
    except Refused as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    for search in searches:
        print(
            f"# {search.strategy}: {search.metric} {search.value:.4g} at "
            f"{' '.join(search.tuned) or 'its defaults'} ({search.folder})"
        )
    for args_ in commands:
        print(_shell(args_))
    print(_shell(["python", "-m", "growlab.report", sweep_dir]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
