"""``scripts/retrain.py``: train a challenger, score it against the champion, keep a registry."""
