"""`python -m growlab.evaluate RUN_DIR`: see growlab.cli.evaluate."""

import sys

from growlab.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
