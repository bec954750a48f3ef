"""``mlcycle label-issues``: likely label errors from out-of-fold (or val) probabilities.

:mod:`.inputs` reads a comparison's out-of-fold probabilities or a run's val predictions with
the data they were made on; :mod:`.rank` ranks the label issues (cleanlab's confident
learning) and adds near-duplicates with conflicting labels and outliers from embeddings;
:mod:`.output` writes ``label_issues.csv`` and a gallery. How an item is named and shown
(an image's thumbnail, a table row's values) is its kind of data's :class:`.views.ItemView`.
"""
