#!/usr/bin/env python
"""Champion and challenger: ``python scripts/retrain.py --champion RUN --config C --data.root NEW``."""

from mlcycle.commands.retrain import main

if __name__ == "__main__":
    main()
