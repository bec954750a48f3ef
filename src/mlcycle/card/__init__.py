"""The model card (report.py): facts, sections, figures and the HTML page."""
