"""The user's config folders on growlab's search path from the start: see
growlab/cli/search_path.py (GROWLAB_CONFIG_PATH)."""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from growlab.cli.search_path import ENV, MAIN, user_entries


class GrowlabSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(element.path == MAIN for element in search_path.get_path()):
            return  # another Hydra app in the same environment
        for entry in user_entries():
            search_path.append(provider=ENV, path=entry)
