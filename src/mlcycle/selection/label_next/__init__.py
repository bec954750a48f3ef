"""What to label next: rank unlabeled images (or the prediction store's rows) by how unsure
the model is (``scores.py``) or how much several models disagree, spread the picks over the
embedding space (``kcenter.py``), write a labeling CSV and a gallery (``output.py``), and bring
the filled labels back into the store or a manifest (``feedback.py``).
``mlcycle label-next`` (``commands/label_next.py``) runs it."""
