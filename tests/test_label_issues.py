"""label-issues and data.relabel on tiny generated data: real cleanlab finds planted label
flips; a relabel file changes the training labels and the data fingerprint but not the user's
files; a bad relabel line is one line naming it (exit 2)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from mlcycle.core.errors import UserError
from mlcycle.selection.label_issues import rank


def blobs(n: int = 300, flips: int = 15, seed: int = 0):
    """Three well-separated classes, ``flips`` labels planted wrong; cross-validated probs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + 4 * np.eye(3, 4)[truth]
    noisy = truth.copy()
    planted = rng.choice(n, flips, replace=False)
    noisy[planted] = (truth[planted] + 1) % 3
    probs = cross_val_predict(LogisticRegression(), x, noisy, cv=5, method="predict_proba")
    return x, truth, noisy, planted, probs


def test_confident_learning_ranks_planted_flips_first():
    _, truth, noisy, planted, probs = blobs()
    found = rank.label_issues(noisy, probs)
    top = {i.row for i in found[: len(planted)]}
    assert len(top & set(planted.tolist())) >= 0.8 * len(planted)
    by_row = {i.row: i for i in found}
    hits = [by_row[r] for r in planted.tolist() if r in by_row]
    assert sum(i.suggested == truth[i.row] for i in hits) >= 0.9 * len(hits)  # the true class
    assert [i.score for i in found] == sorted((i.score for i in found), reverse=True)


def test_near_duplicates_with_other_labels_and_outliers_from_embeddings():
    x, _, noisy, _, probs = blobs(flips=0)
    x = np.vstack([x, x[:1] + 1e-6, np.full((1, 4), 60.0)])  # a copy of item 0, a far item
    given = np.append(noisy, [(noisy[0] + 1) % 3, noisy[1]])
    probs = np.vstack([probs, probs[:1], probs[1:2]])
    keys = [f"item{i}" for i in range(len(x))]
    near = rank.near_duplicates(x, given, probs, ["a", "b", "c"], keys)
    assert {i.row for i in near} == {0, len(x) - 2}
    assert "near-duplicate of item0" in next(i for i in near if i.row == len(x) - 2).reason
    far = rank.outliers(x, probs, share=0.01)
    assert len(x) - 1 in {i.row for i in far}
    merged = rank.merged(rank.label_issues(given, probs) + near + far)
    assert len({i.row for i in merged}) == len(merged)


# --- data.relabel on images ----------------------------------------------------------------


def image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for label, level in (("dark", 40), ("light", 210)):
        (root / label).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(level, 10, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / label / f"{i}.png")
    return root


def digest(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def image_data(root: Path, **kwargs):
    from mlcycle.data import ImageClassificationData

    return ImageClassificationData(source="folder", root=str(root), index_cache=False, **kwargs)


def write_relabel(path: Path, rows: list[tuple], columns=("path", "label")) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def test_relabel_changes_image_labels_and_fingerprint_not_the_files(tmp_path):
    root = image_folder(tmp_path / "images")
    before = digest(root)
    relabel = write_relabel(
        tmp_path / "fix.csv", [("images/dark/0.png", "light"), (str(root / "light/3.png"), "dark")]
    )
    plain, fixed = image_data(root), image_data(root, relabel=str(relabel))
    labels = {Path(s.path).relative_to(root).as_posix(): s.label for s in fixed.index.samples}
    assert labels["dark/0.png"] == "light" and labels["light/3.png"] == "dark"
    assert labels["dark/1.png"] == "dark"
    assert plain.fingerprint != fixed.fingerprint
    assert fixed.describe()["relabelled"] == 2
    assert any(row[3] == "relabel" for row in fixed.manifest_rows())
    assert digest(root) == before  # the user's files untouched


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (("elsewhere/0.png", "dark"), "line 3: 'elsewhere/0.png' is not an image of the data"),
        (("images/dark/2.png", "grey"), "line 3: class 'grey' is not one of the data's classes"),
    ],
)
def test_a_bad_relabel_line_is_named(tmp_path, row, words):
    root = image_folder(tmp_path / "images")
    relabel = write_relabel(tmp_path / "fix.csv", [("images/dark/0.png", "light"), row])
    with pytest.raises(UserError, match=words):
        image_data(root, relabel=str(relabel)).index  # noqa: B018


# --- tables: data.relabel, and label-issues from a comparison end to end -------------------


def noisy_table(path: Path, rows: int = 200, flips: int = 12) -> np.ndarray:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    label = np.where(frame.a + 0.5 * frame.b > 0, "yes", "no")
    planted = rng.choice(rows, flips, replace=False)
    label[planted] = np.where(label[planted] == "yes", "no", "yes")
    frame["label"] = label
    frame.to_csv(path, index=False)
    return planted + 1  # row numbers as read


def test_relabel_a_table_and_bad_rows(tmp_path):
    from mlcycle.tables.data import TabularData

    table = tmp_path / "t.csv"
    noisy_table(table)
    before = table.read_bytes()
    first = pd.read_csv(table).label.iloc[0]
    other = "no" if first == "yes" else "yes"
    relabel = write_relabel(tmp_path / "fix.csv", [(1, other)], ("row", "label"))
    plain = TabularData(path=str(table), target="label")
    fixed = TabularData(path=str(table), target="label", relabel=str(relabel))
    assert fixed.table.labels[0] == other and plain.table.labels[0] == first
    assert plain.fingerprint != fixed.fingerprint and fixed.describe()["relabelled"] == 1
    assert table.read_bytes() == before
    bad = write_relabel(tmp_path / "bad.csv", [(1, other), (999, "yes")], ("row", "label"))
    with pytest.raises(UserError, match="line 3: row '999' is not a row of the table"):
        TabularData(path=str(table), target="label", relabel=str(bad)).table  # noqa: B018


@pytest.mark.slow
def test_label_issues_of_a_table_comparison_find_the_flips(tmp_path, monkeypatch):
    from mlcycle.commands.compare import main as compare
    from mlcycle.commands.label_issues import main as label_issues

    monkeypatch.setenv("MLCYCLE_FIGURES", "inline")
    monkeypatch.chdir(tmp_path)
    planted = noisy_table(tmp_path / "t.csv")
    data = {"source": "csv", "path": "t.csv", "target": "label", "batch_size": 32}
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "max_epochs": 2},
        "model": {"class_path": "mlcycle.tables.TabularTask", "init_args": {"hidden": [16]}},
        "data": {"class_path": "mlcycle.tables.TabularData", "init_args": data},
    }
    Path("train.yaml").write_text(yaml.safe_dump(config))
    spec = {"train": ["train.yaml"], "folds": 3, "candidates": [{"name": "lin", "estimator": "linear"}]}  # fmt: skip
    Path("cmp.yaml").write_text(yaml.safe_dump(spec))
    with contextlib.redirect_stdout(io.StringIO()):
        compare(["--config", "cmp.yaml", "--out", "out"])
        written = label_issues(["out"])
    found = pd.read_csv(written)
    assert list(found.columns) == ["row", "given", "suggested", "score", "reason"]
    labelled = found[found.reason.str.contains("label issue")]
    assert len(set(labelled.row.head(len(planted))) & set(planted.tolist())) >= len(planted) // 2
    assert "Label issues" in (written.parent / "label_issues.html").read_text()
    with pytest.raises(SystemExit) as stop:
        label_issues(["out", "--candidate", "nothing"])
    assert stop.value.code == 2
