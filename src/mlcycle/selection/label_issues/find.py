"""label-issues from start to end: read, rank, write, and the console's lines."""

from __future__ import annotations

from pathlib import Path

from mlcycle.core.errors import UserError
from mlcycle.selection.label_issues import rank
from mlcycle.selection.label_issues.inputs import Inputs, read_inputs
from mlcycle.selection.label_issues.output import write_outputs


def find_issues(inputs: Inputs, outlier_share: float) -> tuple[list[rank.Issue], dict[str, int]]:
    """Every finding, merged per item, and the count of each kind."""
    names = len(inputs.class_names)
    if inputs.probs.ndim != 2 or inputs.probs.shape[1] != names:
        raise UserError(f"the probabilities have shape {inputs.probs.shape}; {names} classes")
    found = rank.label_issues(inputs.given, inputs.probs)
    counts = {"label": len(found), "near-duplicate": 0, "outlier": 0, "embeddings": 0}
    if inputs.features is not None:
        keys = [
            " ".join(str(v) for v in inputs.view.ids(inputs.data, p).values())
            for p in inputs.positions
        ]
        near = rank.near_duplicates(
            inputs.features, inputs.given, inputs.probs, inputs.class_names, keys
        )
        far = rank.outliers(inputs.features, inputs.probs, outlier_share)
        counts.update({"near-duplicate": len(near), "outlier": len(far), "embeddings": 1})
        found += near + far
    return rank.merged(found), counts


def label_issues(
    path: str | Path,
    candidate: str | None = None,
    out: str | Path | None = None,
    gallery: int = 100,
    outlier_share: float = rank.OUTLIER_SHARE,
) -> Path:
    """Rank the likely label errors of a comparison's folder or a run directory; write
    ``label_issues.csv`` and ``label_issues.html`` into ``out`` (default
    ``<path>/label_issues``); returns the CSV."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"'{path}' is not a folder; pass a comparison's --out or a run directory")
    inputs = read_inputs(path, candidate)
    issues, counts = find_issues(inputs, outlier_share)
    folder = Path(out) if out else path / "label_issues"
    table, page = write_outputs(folder, inputs, issues, counts, gallery)
    share = counts["label"] / max(1, len(inputs.positions))
    extra = (
        f", {counts['near-duplicate']} near-duplicates with another label, "
        f"{counts['outlier']} outliers"
        if counts["embeddings"]
        else " (no embeddings: no near-duplicates or outliers looked for)"
    )
    print(
        f"label issues: {counts['label']} of {len(inputs.positions)} items ({share:.1%}) look "
        f"mislabelled{extra}; from the {inputs.source}"
    )
    print(f"wrote {table} and {page}")
    return table
