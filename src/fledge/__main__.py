"""`python -m fledge ...`: the same as the `fledge` command."""

import sys

from fledge.cli import main

if __name__ == "__main__":
    sys.exit(main())
