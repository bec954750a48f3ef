"""ensemble.py: combine trained runs (or a comparison's shortlist) into one run directory. The
combinations and the shared steps are here; each task's way of ensembling registers in
:data:`mlcycle.selection.ensemble.kinds.ENSEMBLES`."""
