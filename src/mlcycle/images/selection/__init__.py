"""The image tasks' part of selection: how compare.py cross-validates them (their train+val
images cut into folds, deep and classic candidates, out-of-fold probabilities of a classifier,
highest-loss galleries and importance maps), and how ensemble.py combines classifiers into one
network. Registered through the ``mlcycle.comparisons`` and ``mlcycle.ensembles`` entry points
of mlcycle's ``pyproject.toml``."""
