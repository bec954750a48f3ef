#!/usr/bin/env python
"""Serve an exported model over HTTP: ``python scripts/serve.py --run RUN`` (docs/serving.md)."""

from mlcycle.commands.serve import main

if __name__ == "__main__":
    main()
