"""`python -m growlab.norm_study`: see growlab.cli.norm_study."""

import sys

from growlab.cli.norm_study import main

if __name__ == "__main__":
    sys.exit(main())
