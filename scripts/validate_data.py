#!/usr/bin/env python
"""Check a config's data: ``python scripts/validate_data.py --config CONFIG [--out reports/data]``."""

from mlcycle.commands.validate_data import main

if __name__ == "__main__":
    main()
