#!/usr/bin/env python
"""Write a run's model card: ``python scripts/report.py --run runs/quickstart/<time>``."""

from mlcycle.reports.model_card import main

if __name__ == "__main__":
    main()
