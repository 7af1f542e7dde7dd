"""`python -m growlab.tune_to_sweep SEARCH_DIR ...`: see growlab.cli.tune_to_sweep."""

import sys

from growlab.cli.tune_to_sweep import main

if __name__ == "__main__":
    sys.exit(main())
