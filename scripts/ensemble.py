#!/usr/bin/env python
"""Combine trained runs into one: ``python scripts/ensemble.py --runs RUN_A RUN_B --method all``."""

from mlcycle.commands.ensemble import main

if __name__ == "__main__":
    main()
