"""Serving side of mlcycle: the model server (``app.py``, ``service.py``, ``model.py``), the
prediction store (``store.py``) and predict.py's batch jobs into it (``batch_jobs.py``). It
answers through mlcycle.edge's output forms. Nothing here imports torch, Lightning or
albumentations: numpy, pillow, onnxruntime, SQLAlchemy, FastAPI."""
