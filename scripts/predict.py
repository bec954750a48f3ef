#!/usr/bin/env python
"""Predict with an exported model: ``python scripts/predict.py RUN/export/model.onnx IMAGES``
(docs/export.md). On a device without mlcycle, copy src/mlcycle/edge and run ``python -m edge``."""

import sys

from mlcycle.commands.predict import main

if __name__ == "__main__":
    sys.exit(main())
