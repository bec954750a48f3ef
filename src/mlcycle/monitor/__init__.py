"""Monitoring of a served model: the reference written at export (``reference.py``, with the
val predictions summarized per output form: ``val_predictions.py``), drift and performance
checks (``drift.py``, ``checks.py``) and their run over the store's windows (``judge.py``;
``scripts/monitor.py`` is ``mlcycle.commands.monitor``).

Nothing here imports torch, Lightning or albumentations, so the monitor runs where the server
runs: numpy, scipy, SQLAlchemy, matplotlib (``reference.py`` is handed the data by export.py).
"""
