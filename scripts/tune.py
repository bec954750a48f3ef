#!/usr/bin/env python
"""Search hyperparameters with Optuna: ``python scripts/tune.py --config configs/tune/digits.yaml``."""

from mlcycle.commands.tune import main

if __name__ == "__main__":
    main()
