"""The monitor's thresholds: documented defaults, overridden by a YAML mapping (--thresholds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.yaml_files import read_mapping

# name -> (default, meaning); docs/monitoring.md explains the choices
DEFAULTS: dict[str, tuple[Any, str]] = {
    "min_rows": (30, "rows a window needs to be judged at all"),
    "reference_split": ("train", "the split whose input statistics are the reference (or val)"),
    "psi": (0.2, "PSI above this is drift (0.1-0.2 moderate, > 0.2 large)..."),
    "psi_noise_quantile": (0.99, "...and above this quantile of the PSI sampling noise alone"),
    "ks_p": (0.01, "KS p-value below this is drift..."),
    "ks_min_rows": (50, "...in a window of at least this many rows..."),
    "ks_min_statistic": (0.1, "...with a CDF distance of at least this (large windows)"),
    "chi2_p": (0.01, "predicted-class chi-square p-value below this is drift..."),
    "chi2_min_effect": (0.1, "...with Cohen's w = sqrt(chi2 / n) at least this"),
    "class_psi": (0.2, "PSI of the predicted-class shares above this (and the noise) is drift"),
    "confidence_shift": (0.1, "mean confidence moved by more than this (and |z| > 2.58)"),
    "accuracy_drop": (0.05, "accuracy this far below the reference, interval above it too"),
    "f1_drop": (0.05, "macro F1 this far below the reference, interval above it too"),
    "missing_shift": (0.1, "a column's missing rate moved by more than this (binomial p < chi2_p)"),
    "unseen_share": (0.02, "a category column: share of values the reference never saw above this"),
    "error_rise": (0.2, "RMSE or MAE from feedback this share above val's, interval above it"),
    "r2_drop": (0.1, "R2 from feedback this far below val's, interval below it too"),
    "min_feedback": (30, "rows with feedback a window needs for the performance checks"),
}
SPLITS = ("train", "val")


def defaults() -> dict[str, Any]:
    return {name: value for name, (value, _) in DEFAULTS.items()}


def load_thresholds(path: str | Path | None) -> dict[str, Any]:
    """The defaults, with the values of the YAML mapping at ``path`` (when given) in place."""
    values = defaults()
    if path is None:
        return values
    path = Path(path)
    given = read_mapping(path, "thresholds file")
    for name, value in given.items():
        if name not in DEFAULTS:
            raise UserError(f"unknown threshold '{name}' in '{path}'; known: {', '.join(DEFAULTS)}")
        if name == "reference_split":
            if value not in SPLITS:
                raise UserError(f"reference_split in '{path}' must be train or val")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UserError(f"threshold '{name}' in '{path}' must be a number >= 0, not {value!r}")
        values[name] = value
    return values
