#!/usr/bin/env python
"""Train a model: ``python scripts/train.py --config configs/quickstart.yaml [--key=value ...]``."""

from mlcycle.commands.train import main

if __name__ == "__main__":
    main()
