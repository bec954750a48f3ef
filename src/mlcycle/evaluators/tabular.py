"""Tables: the evaluator lives in :mod:`mlcycle.tables.evaluator`; importing it here registers
it under ``tabular`` (the registry imports this package's modules)."""

from mlcycle.tables.evaluator import evaluate_tabular

__all__ = ["evaluate_tabular"]
