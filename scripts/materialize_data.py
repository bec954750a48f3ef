#!/usr/bin/env python
"""Copy a config's data to a new folder: ``python scripts/materialize_data.py --config CONFIG --out DIR [--strip-exif]``."""

from mlcycle.commands.materialize_data import main

if __name__ == "__main__":
    main()
