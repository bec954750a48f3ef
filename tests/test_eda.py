"""eda.py: a self-contained HTML page and an executed notebook; the test split stays unread."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import tree_digest
from quality_helpers import plant_faults, split_layout

from mlcycle.commands.eda import main
from mlcycle.quality.attributes import correlation_ratio, cramers_v, describe_attributes


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """A CSV manifest (with a split column and extra attributes) over images with planted faults."""
    root = split_layout(tmp_path_factory.mktemp("eda") / "images", per_class=6)
    plant_faults(root)
    rng = np.random.default_rng(0)
    path = root / "labels.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "split", "camera", "exposure", "iso"])
        for p in sorted(root.rglob("*.png")):
            split, label = p.parts[-3], p.parent.name
            camera = "cam1" if label == "a" else str(rng.choice(["cam1", "cam2"]))
            iso = "" if rng.random() < 0.25 else int(rng.integers(100, 800))
            exposure = round(float(rng.normal(10 if label == "b" else 5, 1)), 2)
            writer.writerow([p.relative_to(root).as_posix(), label, split, camera, exposure, iso])
    return path


def run(manifest: Path, out: Path, *extra: str) -> Path:
    args = ["--config", "configs/image_csv.yaml", f"--data.manifest={manifest}", "--out", str(out)]
    return main([*args, *extra])


def test_html_and_executed_notebook_without_the_test_split(manifest, tmp_path):
    root = manifest.parent
    before = tree_digest(root)
    out = run(manifest, tmp_path / "eda")
    assert tree_digest(root) == before

    page = (out / "index.html").read_text()
    assert "The test split was not read" in page
    assert len(re.findall(r'<img alt="\w+" src="data:image/png;base64,', page)) >= 10
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # nothing to fetch: readable offline
    assert "/test/" not in page  # no test file named, let alone shown
    for heading in ("Counts and file types", "PCA and t-SNE", "Duplicates, leakage", "Outliers"):
        assert heading in page
    assert "camera" in page and "categorical" in page and "Cramer" in page
    assert "leak_near.png" in page  # the train/val near duplicate is shown side by side

    record = json.loads((out / "eda.json").read_text())
    assert record["include_test"] is False and record["splits_read"] == ["train", "val"]
    assert record["test_files_not_read"] == 7 and record["findings"]["leakage"] == 1

    nb = nbformat.read(out / "eda.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    assert "include_test=False" in code[0].source


def test_include_test_is_recorded_and_sample_caps_the_images(manifest, tmp_path):
    out = run(manifest, tmp_path / "eda", "--include-test", "--sample", "20", "--no-notebook")
    record = json.loads((out / "eda.json").read_text())
    assert record["include_test"] is True and "test" in record["splits_read"]
    assert record["images_analysed"] <= 20 and record["sampled_out"] > 0
    page = (out / "index.html").read_text()
    assert "--include-test was given" in page
    assert not (out / "eda.ipynb").exists()


def test_attribute_statistics():
    labels = ["a", "a", "b", "b"]
    assert correlation_ratio(np.array([1.0, 1.0, 5.0, 5.0]), labels) == pytest.approx(1.0)
    assert correlation_ratio(np.array([1.0, 5.0, 1.0, 5.0]), labels) == pytest.approx(0.0)
    assert cramers_v(["x", "x", "y", "y"], labels) == pytest.approx(1.0)
    metas = [{"n": "1", "c": "x", "id": f"r{i}"} for i in range(3)] + [{"n": "", "c": None}]
    attrs, corr = describe_attributes(metas, ["a", "a", "b", "b"])
    kinds = {a.name: (a.kind, a.missing) for a in attrs}
    assert kinds == {
        "c": ("categorical", 0.25),
        "id": ("categorical", 0.25),
        "n": ("numeric", 0.25),
    }
    assert corr["names"] == ["n"]
