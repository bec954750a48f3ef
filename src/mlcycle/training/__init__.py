"""Training: the LightningCLI subclass that builds a run from its config, and fit()."""
