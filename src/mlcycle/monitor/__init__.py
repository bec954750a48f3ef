"""Monitoring of a served model: the reference written at export (``reference.py``), drift and
performance checks (``drift.py``, ``checks.py``) and ``scripts/monitor.py`` (``cli.py``).

Nothing here imports torch, Lightning or albumentations, so the monitor runs where the server
runs: numpy, scipy, SQLAlchemy, matplotlib (``reference.py`` is handed the data by export.py).
"""
