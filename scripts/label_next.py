#!/usr/bin/env python
"""What to label next: ``python scripts/label_next.py --model RUN --images FOLDER [--budget 20]``."""

from mlcycle.commands.label_next import main

if __name__ == "__main__":
    main()
