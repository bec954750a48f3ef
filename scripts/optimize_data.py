#!/usr/bin/env python
"""Write a config's data into litdata's chunks: ``python scripts/optimize_data.py --config CONFIG --out DIR|s3://...``."""

from mlcycle.commands.optimize import main

if __name__ == "__main__":
    main()
