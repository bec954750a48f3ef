"""Serving side of mlcycle: what runs next to an exported model. Nothing here imports torch,
Lightning or albumentations: numpy, pillow, onnxruntime, SQLAlchemy, FastAPI."""
