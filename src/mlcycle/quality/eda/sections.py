"""The report's outline: which tables and figures, in which order. HTML and notebook follow it."""

from __future__ import annotations

# (heading, [(module, function, *arguments)]) with module "tables", "figures" or "annotations";
# an entry that has nothing to show for the data (masks for classification) returns "" or None.
SECTIONS: list[tuple[str, list[tuple[str, ...]]]] = [
    ("What was read", [("tables", "provenance")]),
    (
        "Counts and file types",
        [("tables", "counts"), ("figures", "class_balance"), ("tables", "file_types")],
    ),
    ("Image sizes and aspect ratios", [("tables", "sizes"), ("figures", "sizes")]),
    (
        "Pixel statistics",
        [("tables", "channel_stats"), ("figures", "pixel_statistics")],
    ),
    ("Sample images per class", [("figures", "sample_grid")]),
    (
        "Masks and boxes (segmentation, detection)",
        [
            ("annotations", "summary"),
            ("annotations", "class_share"),
            ("annotations", "per_image"),
            ("annotations", "box_shapes"),
            ("annotations", "annotated_samples"),
        ],
    ),
    (
        "2-D map of the data (PCA and t-SNE)",
        [("figures", "embedding", "pca"), ("figures", "embedding", "tsne")],
    ),
    (
        "Duplicates, leakage and label conflicts",
        [
            ("tables", "findings"),
            ("figures", "pairs", "leakage"),
            ("figures", "pairs", "label_conflicts"),
            ("figures", "pairs", "near_duplicates"),
        ],
    ),
    ("Outliers", [("figures", "outliers")]),
    (
        "Attributes (extra manifest or query columns)",
        [
            ("tables", "attributes"),
            ("figures", "attribute_distributions"),
            ("figures", "attribute_correlations"),
        ],
    ),
]


def call(module: str, name: str, *args: str) -> str:
    """The Python expression of one entry, as the notebook writes it."""
    extra = "".join(f", {a!r}" for a in args)
    return f"{module}.{name}(eda{extra})"
