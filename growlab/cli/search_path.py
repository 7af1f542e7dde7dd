"""Where growlab looks for the user's config folders besides its own `growlab.conf`.

GROWLAB_CONFIG_PATH (folders separated by the OS path separator) is put on Hydra's search path
when Hydra builds it, before it reads the command line (hydra_plugins/growlab_searchpath), so
it counts for runs, sweeps, `--cfg` and `--help` whatever the order of the arguments; a
`hydra.searchpath=[...]` on the command line adds its folders after those. Hydra's `--help`
lists the config groups of the search path it starts with, which a `hydra.searchpath`
override never reaches: growlab's entry point passes it here (`show_in_help`) first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "GROWLAB_CONFIG_PATH"
# growlab's primary config: the search-path plugin leaves every other Hydra app alone.
MAIN = "pkg://growlab.conf"
# Kept here, not in the plugin module: Hydra's plugin discovery re-executes that module.
_help_entries: list[str] = []


def user_entries() -> list[str]:
    """GROWLAB_CONFIG_PATH's folders as search-path entries (absolute, `~` expanded), then
    those of a command-line `hydra.searchpath` given with --help."""
    folders = [
        Path(p).expanduser().absolute() for p in os.environ.get(ENV, "").split(os.pathsep) if p
    ]
    for folder in folders:
        if not folder.is_dir():
            # Logging is not set up yet when Hydra builds its search path.
            sys.stderr.write(f"[growlab][WARNING] - {ENV}: {folder} is not a folder; left out\n")
    return [f"file://{f}" for f in folders if f.is_dir()] + _help_entries


def show_in_help(entries: list[str]) -> None:
    """Search-path entries (`file://...`, `pkg://...`) whose options --help lists too."""
    _help_entries[:] = entries
