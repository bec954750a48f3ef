"""An mlcycle plugin that changes no mlcycle file: it adds an architecture (``tiny_dwnet``), a data
source (``jsonl``) and a task (multi-label classification) with its evaluator and exporter, all
through the entry points in ``pyproject.toml``."""
