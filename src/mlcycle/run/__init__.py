"""The run directory: written by training (``record``), read by every later step (``loader``)."""
