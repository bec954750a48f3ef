#!/usr/bin/env python
"""Would more data help? ``python scripts/learning_curve.py --config configs/compare/digits.yaml
--candidate svc``."""

from mlcycle.commands.learning_curve import main

if __name__ == "__main__":
    main()
