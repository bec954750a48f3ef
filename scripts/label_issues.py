#!/usr/bin/env python
"""Rank likely label errors: ``python scripts/label_issues.py runs/compare/digits``."""

from mlcycle.commands.label_issues import main

if __name__ == "__main__":
    main()
