#!/usr/bin/env python
"""Write a run's model card: ``python scripts/report.py --run runs/quickstart/<time>``."""

from mlcycle.commands.report import main

if __name__ == "__main__":
    main()
