"""``python -m mlcycle <command> [args]``: the same as ``mlcycle <command> [args]``."""

import sys

from mlcycle.commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
