#!/usr/bin/env python
"""Evaluate a run: ``python scripts/evaluate.py --run runs/quickstart/<time> --split val``."""

from mlcycle.commands.evaluate import main

if __name__ == "__main__":
    main()
