#!/usr/bin/env python
"""Export a run for edge devices: ``python scripts/export.py --run DIR [--quantize int8]``."""

from mlcycle.commands.export import main

if __name__ == "__main__":
    main()
