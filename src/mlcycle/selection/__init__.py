"""The selection loop: compare many models by cross-validation, tune one, ensemble the best,
all against the project's objective, never reading the test split."""
