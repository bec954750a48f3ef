"""tune.py: a hyperparameter search with Optuna over train.py runs (one run, or k folds, per
trial), shared by any number of workers through one storage."""
