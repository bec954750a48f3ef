#!/usr/bin/env python
"""Cross-validate many models: ``python scripts/compare.py --config configs/compare/digits.yaml``."""

from mlcycle.commands.compare import main

if __name__ == "__main__":
    main()
