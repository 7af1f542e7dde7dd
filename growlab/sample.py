"""`python -m growlab.sample RUN_DIR --chars 500`: see growlab.cli.sample."""

import sys

from growlab.cli.sample import main

if __name__ == "__main__":
    sys.exit(main())
