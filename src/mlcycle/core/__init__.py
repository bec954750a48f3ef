"""The base layer: errors, the registry, the run record, the objective, device choice and the
small helpers every other package uses. It imports nothing else of mlcycle."""
