"""validate_data.py and eda.py on tables: small generated CSVs with planted problems."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from mlcycle.commands.eda import main as eda_main
from mlcycle.commands.validate_data import main as validate_main
from mlcycle.tables.quality.columns import suggest_transform
from mlcycle.tables.quality.relations import cramers_v

ROOT = Path(__file__).resolve().parents[1]


def planted(n: int = 150, seed: int = 0) -> pd.DataFrame:
    """A classification table with a leak, an identifier, a skewed column, text in a number
    column, a constant, a missing target and two identical rows."""
    rng = np.random.default_rng(seed)
    y = rng.choice(["no", "yes"], n, p=[0.6, 0.4])
    frame = pd.DataFrame(
        {
            "row_id": [f"R{i:05d}" for i in range(n)],
            "age": rng.normal(40, 10, n).round(1),
            "amount": rng.lognormal(3, 1, n).round(2),  # skew about 4
            "city": rng.choice(["Berlin", "Lyon", "Oslo"], n),
            "weight": rng.normal(70, 8, n).round(1).astype(str),
            "country": "DE",
            "refund_issued": np.where(y == "yes", 1.0, 0.0) * 5 + rng.normal(0, 0.01, n),
            "churn": y,
        }
    )
    frame.loc[3, "weight"] = "n/a"  # read as missing
    frame.loc[7, "weight"] = "unknown"
    frame.loc[10, "churn"] = None
    frame.iloc[20] = frame.iloc[21]  # a duplicated row
    frame.loc[20, "row_id"] = frame.loc[21, "row_id"] = "R99999"
    frame.loc[[0, 1], "age"] = np.nan
    return frame


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("table") / "customers.csv"
    planted().to_csv(path, index=False)
    return path


def test_validate_flags_leak_identifier_and_the_rest(table_csv, tmp_path, capsys):
    out = tmp_path / "report"
    report = validate_main(["--table", str(table_csv), "--target", "churn", "--out", str(out)])
    found = report["findings"]
    assert report["task"] == "classification" and report["rows"] == 150
    assert [f["column"] for f in found["target_leakage"]] == ["refund_issued"]
    assert found["target_leakage"][0]["score"] >= 0.99
    assert {f["column"] for f in found["identifier_columns"]} == {"row_id"}
    assert [f["column"] for f in found["constant_columns"]] == ["country"]
    mixed = {f["column"]: f for f in found["mixed_types"]}
    assert set(mixed) == {"weight"} and mixed["weight"]["examples"] == ["unknown"]
    assert found["target_missing"] == [{"count": 1, "rows": [10]}]
    assert found["duplicate_rows"] == [{"rows": [20, 21], "count": 2}]
    assert {f["column"] for f in found["missing_values"]} == {"age", "weight", "churn"}
    assert any(f["column"] == "amount" for f in found["outliers"])
    expected = planted()["churn"].value_counts().to_dict()
    assert report["class_counts"] == expected and sum(expected.values()) == 149
    # Files agree with the report; the printed summary warns about the leak.
    saved = json.loads((out / "data_report.json").read_text())
    assert saved["counts"] == {k: len(v) for k, v in found.items()}
    with (out / "columns.csv").open() as fh:
        rows = {r["column"]: r for r in csv.DictReader(fh)}
    assert rows["amount"]["suggested_transform"] in ("log", "sqrt", "yeo-johnson")
    assert rows["row_id"]["kind"] == "identifier" and rows["row_id"]["dropped"]
    printed = capsys.readouterr().out
    assert "column 'refund_issued'" in printed and "target_leakage" in printed


def test_regression_leak_is_measured_by_r2(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 200)
    y = 3 * x + rng.normal(0, 1, 200)
    frame = pd.DataFrame({"x": x, "noise": rng.normal(0, 1, 200), "y_copy": 2 * y + 1, "y": y})
    path = tmp_path / "reg.csv"
    frame.to_csv(path, index=False)
    report = validate_main(["--table", str(path), "--target", "y", "--out", str(tmp_path / "r")])
    assert report["task"] == "regression"
    assert [f["column"] for f in report["findings"]["target_leakage"]] == ["y_copy"]
    scores = report["single_feature_scores"]
    assert scores["y_copy"] >= 0.99 and 0.5 < scores["x"] < 0.99 and scores["noise"] < 0.2


def test_suggested_transforms():
    rng = np.random.default_rng(0)
    skewed = suggest_transform(rng.lognormal(3, 1, 500))
    assert skewed["name"] == "log" and skewed["skew_before"] > 2 and abs(skewed["skew_after"]) < 0.3
    assert suggest_transform(rng.normal(0, 1, 500)) is None  # not skewed
    left = suggest_transform(-rng.lognormal(3, 1, 500))  # negative values: no log, no sqrt
    assert left["name"] == "yeo-johnson" and abs(left["skew_after"]) < 0.5


def test_cramers_v_is_bias_corrected():
    rng = np.random.default_rng(0)
    a = pd.Series(rng.choice(list("abc"), 2000))
    assert cramers_v(a, a) == pytest.approx(1.0)
    many = pd.Series(rng.integers(0, 60, 2000).astype(str))  # unrelated, many levels
    assert cramers_v(many, a) < 0.1


def test_eda_report_files_and_heat_map(table_csv, tmp_path, capsys):
    out = tmp_path / "eda"
    eda_main(["--table", str(table_csv), "--target", "churn", "--out", str(out), "--no-notebook"])
    page = (out / "index.html").read_text()
    for heading in ("Correlations", "Skew and suggested transforms", "k-means and PCA"):
        assert heading in page
    heat = out / "figures" / "correlations.png"
    assert heat.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and heat.stat().st_size > 5000
    for name in ("distributions", "target", "target_relationship", "pca", "leakage", "outliers"):
        assert (out / "figures" / f"{name}.png").is_file(), name
    summary = json.loads((out / "eda.json").read_text())
    assert summary["rows_analysed"] == 150 and summary["task"] == "classification"
    assert summary["suggested_transforms"]["amount"]["name"] in ("log", "sqrt", "yeo-johnson")
    assert [leak["column"] for leak in summary["leakage"]] == ["refund_issued"]
    assert summary["kmeans"]["k"] >= 2 and len(summary["pca_explained_variance"]) >= 2
    assert "refund_issued" in capsys.readouterr().out


def test_a_tabular_data_config_keeps_the_test_split_sealed(tmp_path):
    """With a config, rows get the splits training draws: eda.py leaves the test rows out, and
    validate_data.py finds rows with the same features in two splits."""
    frame = planted(seed=2).drop(columns=["refund_issued"])
    twins = frame.iloc[100:110].copy()
    twins["row_id"] = [f"T{i}" for i in range(10)]
    frame.loc[100:109, "row_id"] = [f"S{i}" for i in range(10)]
    twins["churn"] = np.where(frame.loc[100:109, "churn"] == "yes", "no", "yes")
    pd.concat([frame, twins]).to_csv(tmp_path / "t.csv", index=False)
    config = tmp_path / "table.yaml"
    config.write_text(
        "data:\n  class_path: mlcycle.tables.TabularData\n  init_args:\n"
        f"    source: csv\n    path: {tmp_path / 't.csv'}\n    target: churn\n    drop: [row_id]\n"
    )
    report = validate_main(["--config", str(config), "--out", str(tmp_path / "v")])
    found = report["findings"]
    assert report["split_counts"]["test"] > 0 and report["split_counts"]["not used"] == 1
    assert len(found["label_conflicts"]) == 10  # the twins: same features, other target
    assert found["split_leakage"] and all(len(e["splits"]) == 2 for e in found["split_leakage"])
    out = tmp_path / "eda"
    eda_main(["--config", str(config), "--out", str(out), "--no-notebook"])
    summary = json.loads((out / "eda.json").read_text())
    assert summary["splits_read"] == ["train", "val"] and summary["configs"] == [str(config)]
    assert summary["rows_analysed"] == 160 - summary["split_counts"]["test"]


def _error(main, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_bad_input_is_one_line(table_csv, tmp_path, capsys):
    out = ["--out", str(tmp_path / "x")]
    err = _error(validate_main, ["--table", str(tmp_path / "nope.csv"), "--target", "y", *out], capsys)  # fmt: skip
    assert "nope.csv" in err
    err = _error(eda_main, ["--table", str(table_csv), *out], capsys)
    assert "--target" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b,churn\n")
    assert "no rows" in _error(eda_main, ["--table", str(empty), "--target", "churn", *out], capsys)
    err = _error(validate_main, ["--table", str(table_csv), "--target", "churn", "--config", "configs/image_folder.yaml", *out], capsys)  # fmt: skip
    assert "not both" in err
    err = _error(eda_main, ["--config", "configs/image_folder.yaml", "--target", "churn", *out], capsys)  # fmt: skip
    assert "--target goes with --table" in err and "--data.target" in err


def test_unknown_target_exits_2_from_the_script(table_csv, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "scripts/validate_data.py",
            "--table",
            str(table_csv),
            "--target",
            "chrun",
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'chrun'" in lines[0]
    assert "churn" in lines[0]  # the columns it could have meant
    assert not (tmp_path / "data_report.json").exists()


@pytest.mark.slow
def test_executed_notebook(table_csv, tmp_path):
    out = tmp_path / "eda"
    eda_main(["--table", str(table_csv), "--target", "churn", "--out", str(out)])
    nb = nbformat.read(str(out / "eda.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code[1:])  # the first sets up; every other one shows
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert str(table_csv.resolve()) in code[0].source
