"""Figures, galleries and error analysis: what a person looks at after a run."""
