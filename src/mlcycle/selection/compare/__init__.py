"""compare.py: cross-validate many candidate models on the same folds and rank them. The
generic flow is here; each task's kind of comparison (its pool, folds, scores and analysis)
registers in :data:`mlcycle.selection.compare.kinds.COMPARISONS`."""
