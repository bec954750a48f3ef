#!/usr/bin/env python
"""Monitor served predictions: ``python scripts/monitor.py --db URL --run DIR [--window 1d]``."""

from mlcycle.commands.monitor import main

if __name__ == "__main__":
    main()
