#!/usr/bin/env python
"""Explore a config's data: ``python scripts/eda.py --config CONFIG [--out reports/eda] [--sample N] [--include-test]``."""

from mlcycle.commands.eda import main

if __name__ == "__main__":
    main()
