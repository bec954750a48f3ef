"""The selection loop: compare many models by cross-validation (``compare/``), tune one
(``tune/``), ensemble the best (``ensemble/``), all against the project's objective, never
reading the test split. What differs per task or kind of data (its folds, scores, analysis,
ensemble) comes from the kind's own package through the registries of ``compare.kinds`` and
``ensemble.kinds``; nothing here names a task."""
