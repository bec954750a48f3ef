"""Exploratory data analysis: one analysis (:mod:`.analysis`), shown as a self-contained HTML
page (:mod:`.html`) and as an executed notebook (:mod:`.notebook`) built from the same
figures (:mod:`.figures`) and tables (:mod:`.tables`)."""
