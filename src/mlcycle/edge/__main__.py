"""``python -m edge MODEL INPUTS ...`` on a device (the ``edge`` folder copied alone), or
``python -m mlcycle.edge`` with mlcycle installed: predict.py without the prediction store."""

import sys

from .predict import run

sys.exit(run())
