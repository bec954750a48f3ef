"""The table kind's part of selection: how compare.py cross-validates a table task (its rows
cut into content-stable folds, every candidate-fold a train.py run, out-of-fold probabilities
or values, confusion, residuals and column importance), and how ensemble.py combines table
runs, each with its own pipeline. Registered through the ``mlcycle.comparisons`` and
``mlcycle.ensembles`` entry points of mlcycle's ``pyproject.toml``."""
