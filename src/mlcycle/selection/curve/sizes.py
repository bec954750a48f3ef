"""The learning curve's ``--sizes``, checked before anything heavy is imported."""

from __future__ import annotations

from mlcycle.core.errors import UserError


def check_sizes(sizes: list[float]) -> list[float]:
    """The shares, sorted and unique; one outside (0, 1] is a one-line error."""
    wrong = [s for s in sizes if not 0 < s <= 1]
    if not sizes or wrong:
        shown = f"{wrong[0]:g}" if wrong else "nothing"
        raise UserError(
            f"--sizes {shown}: each size is a share of the training samples in (0, 1], "
            "e.g. --sizes [0.1,0.25,0.5,1]"
        )
    return sorted(set(float(s) for s in sizes))
