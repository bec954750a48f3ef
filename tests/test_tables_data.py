"""Tables, the data side: reading, kinds, splits, the cleaning pipeline and the run record."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import PowerTransformer, StandardScaler

from mlcycle.core.errors import UserError
from mlcycle.evaluators.ledger import hash_of_test_split
from mlcycle.tables import (
    TabularData,
    check_frame,
    describe_features,
    infer_schema,
    read_table,
    row_problems,
)
from mlcycle.tables.builtin import messy
from mlcycle.tables.pipeline import compare_params, fit_pipeline, learned_params

OFF = {  # every optional step off, so a test sees one step at a time
    "missing": {"indicator": False, "drop_columns_over": None},
    "scale": "none",
    "select": {"constant": False, "near_constant": None, "correlated": None},
}


def options(**groups: dict) -> dict:
    out = json.loads(json.dumps(OFF))
    for key, value in groups.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def fitted(frame: pd.DataFrame, config: dict, target: str = "y", **schema_args):
    schema = infer_schema(frame, target, **schema_args)
    y = frame[target].to_numpy()
    if schema.task == "classification":
        y = np.searchsorted(schema.classes, frame[target].astype(str).to_numpy())
    pipeline, matrix, keep = fit_pipeline(schema, config, frame, y)
    names = describe_features(pipeline)["names"]
    return pipeline, matrix, keep, names


def column(matrix: np.ndarray, names: list[str], name: str) -> np.ndarray:
    return matrix[:, names.index(name)]


def reasons(pipeline, step: str) -> dict[str, str]:
    return {
        s["column"]: s["reason"] for s in describe_features(pipeline)["steps"] if s["step"] == step
    }


@pytest.fixture
def tiny() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    x = rng.normal(10, 2, n)
    x[0], x[1] = 100.0, np.nan
    return pd.DataFrame(
        {
            "x": x,
            "pos": rng.lognormal(0, 1, n),
            "neg": rng.normal(0, 1, n),
            "cat": rng.choice(["a", "b", "c"], n).astype(object),
            "y": np.where(rng.random(n) < 0.5, "p", "q"),
        }
    )


@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "messy.csv"
    messy().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def messy_data(messy_csv) -> TabularData:
    data = TabularData(source="csv", path=str(messy_csv), target="churn")
    data.setup()
    return data


# --- reading and kinds ---------------------------------------------------------------------------


def test_messy_kinds_and_identifier_dropped_with_reason():
    schema = infer_schema(messy(), "churn")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds["customer_id"] == "identifier"
    assert schema.column("customer_id").dropped.startswith("identifier-like: 100% unique")
    assert kinds["channel"] == "constant" and schema.column("channel").dropped.startswith(
        "constant"
    )
    assert {kinds[c] for c in ("age", "income", "balance", "visits", "survey_score")} == {"numeric"}
    assert kinds["signup_date"] == kinds["last_login"] == "datetime"
    assert kinds["is_member"] == kinds["promo_used"] == "boolean"
    assert kinds["city"] == kinds["plan"] == kinds["region"] == "categorical"
    assert kinds["product"] == "text"
    assert schema.task == "classification" and schema.classes == ["no", "yes"]
    assert schema.column("churn").dropped == "the target"
    assert "customer_id" not in schema.feature_names and "churn" not in schema.feature_names
    assert schema.to_dict() == type(schema).from_dict(schema.to_dict()).to_dict()


def test_task_inferred_and_overridden():
    assert infer_schema(read_table("builtin", "diabetes"), "target").task == "regression"
    wine = infer_schema(read_table("builtin", "wine"), "target")
    assert wine.task == "classification" and wine.classes == ["class_0", "class_1", "class_2"]
    frame = pd.DataFrame({"a": [i * 0.5 % 7 for i in range(30)], "b": [i % 3 for i in range(30)]})
    assert infer_schema(frame, "b").classes == ["0", "1", "2"]
    assert infer_schema(frame, "b", task="regression").task == "regression"
    with pytest.raises(UserError, match="data.task=classification"):
        infer_schema(pd.DataFrame({"a": [1, 2, 3], "t": ["x", "y", "x"]}), "t", task="regression")


def test_csv_parquet_sql_sources_read_the_same_table(tmp_path):
    frame = messy(rows=50)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    with sqlite3.connect(tmp_path / "t.db") as conn:
        frame.to_sql("customers", conn, index=False)
    from_csv = read_table("csv", str(tmp_path / "t.csv"))
    from_parquet = read_table("parquet", str(tmp_path / "t.parquet"))
    from_sql = read_table(
        "sql", url=f"sqlite:///{tmp_path / 't.db'}", query="SELECT * FROM customers"
    )
    for table in (from_csv, from_parquet, from_sql):
        assert table.shape == frame.shape
        assert infer_schema(table, "churn").column("signup_date").kind == "datetime"
    assert (tmp_path / "t.db").stat().st_size > 0


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_bad_path_source_sql_and_target_are_one_line_errors(tmp_path, messy_csv):
    with pytest.raises(UserError) as exc:
        read_table("csv", str(tmp_path / "nope.csv"))
    assert "nope.csv" in one_line(exc)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(UserError) as exc:
        read_table("parquet", str(tmp_path / "bad.parquet"))
    assert "bad.parquet" in one_line(exc)
    with pytest.raises(UserError) as exc:
        read_table("excel", "x.xlsx")
    assert "data.source 'excel'" in one_line(exc)
    with pytest.raises(UserError) as exc:
        read_table("builtin", "mesy")
    assert "did you mean 'messy'" in one_line(exc)
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
    with pytest.raises(UserError) as exc:
        read_table("sql", url=f"sqlite:///{tmp_path / 't.db'}", query="SELECT * FROM missing")
    assert "data.query failed" in one_line(exc)
    with pytest.raises(UserError) as exc:
        TabularData(source="csv", path=str(messy_csv), target="chrun").setup()
    assert "data.target 'chrun'" in one_line(exc) and "did you mean 'churn'" in str(exc.value)
    with pytest.raises(UserError) as exc:
        TabularData(source="csv", path=str(messy_csv), target="churn", pipeline={"scael": "none"})
    assert "data.pipeline.scael" in one_line(exc) and "'scale'" in str(exc.value)
    with pytest.raises(UserError) as exc:
        TabularData(
            source="csv",
            path=str(messy_csv),
            target="churn",
            pipeline={"bucket": {"columns": ["city"]}},
        ).setup()
    assert "'city'" in one_line(exc) and "categorical" in str(exc.value)


def test_schema_mismatch_names_the_column():
    frame = messy(rows=40)
    schema = infer_schema(frame, "churn")
    with pytest.raises(UserError) as exc:
        check_frame(frame.drop(columns=["income"]), schema)
    assert "column 'income' (numeric) is missing" in one_line(exc)
    wrong = frame.assign(age="old")
    with pytest.raises(UserError) as exc:
        check_frame(wrong, schema)
    assert "column 'age' should hold numeric values" in one_line(exc)
    check_frame(frame.drop(columns=["churn", "customer_id"]), schema)  # not features: not needed
    bad_rows = frame.astype({"age": object, "signup_date": object})
    bad_rows.loc[3, "age"] = "forty"
    bad_rows.loc[5, "signup_date"] = "someday"
    problems = row_problems(bad_rows, schema)
    assert problems == {
        3: "column 'age': 'forty' is not a number",
        5: "column 'signup_date': 'someday' is not a date",
    }


# --- splits --------------------------------------------------------------------------------------


def splits_by_hash(data: TabularData) -> dict[str, str]:
    table = data.table
    return {h: s for h, s in zip(table.hashes, table.splits, strict=True)}


def test_splits_are_content_stable_under_row_and_column_shuffles(tmp_path, messy_data):
    shuffled = messy().sample(frac=1.0, random_state=7)
    shuffled = shuffled[list(reversed(shuffled.columns))]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    again = TabularData(source="csv", path=str(tmp_path / "shuffled.csv"), target="churn")
    first, second = splits_by_hash(messy_data), splits_by_hash(again)
    assert len(first) == 1000 and first == second
    assert again.fingerprint == messy_data.fingerprint
    relabelled = messy()
    relabelled.loc[:99, "churn"] = relabelled.loc[:99, "churn"].map({"yes": "no", "no": "yes"})
    relabelled.to_csv(tmp_path / "relabelled.csv", index=False)
    moved = TabularData(source="csv", path=str(tmp_path / "relabelled.csv"), target="churn")
    assert splits_by_hash(moved) == first  # a row's split follows its features, not its label
    assert moved.fingerprint != messy_data.fingerprint
    other_seed = TabularData(
        source="csv", path=str(tmp_path / "shuffled.csv"), target="churn", split_seed=1
    )
    assert splits_by_hash(other_seed) != first


def test_splits_are_stratified(messy_data):
    y = messy_data.table.y
    overall = y.mean()
    for split in ("train", "val", "test"):
        share = y[messy_data.split_positions(split)].mean()
        assert abs(share - overall) < 0.06, split
    counts = {s: len(messy_data.split_positions(s)) for s in ("train", "val", "test")}
    assert 0.1 < counts["val"] / 1000 < 0.2 and 0.1 < counts["test"] / 1000 < 0.2


def test_group_never_crosses_splits(messy_csv):
    data = TabularData(source="csv", path=str(messy_csv), target="churn", group_column="region")
    frame = data.table.frame
    seen = pd.DataFrame({"region": frame["region"], "split": data.table.splits})
    assert (seen.groupby("region")["split"].nunique() == 1).all()
    assert set(seen["split"]) == {"train", "val", "test"}


def test_time_split_trains_on_the_past(messy_csv):
    data = TabularData(source="csv", path=str(messy_csv), target="churn", time_column="signup_date")
    times = pd.to_datetime(data.table.frame["signup_date"])
    spans = {s: times.iloc[data.split_positions(s)] for s in ("train", "val", "test")}
    assert spans["train"].max() < spans["val"].min()
    assert spans["val"].max() < spans["test"].min()
    # rows without a signup date cannot be placed in time: skipped with the reason
    assert len(data.table.skipped) == int(messy()["signup_date"].isna().sum())
    assert data.table.skipped[0][1] == "no readable time in 'signup_date'"


# --- the pipeline --------------------------------------------------------------------------------


def fitted_scaler(data: TabularData, name: str) -> tuple[StandardScaler, int]:
    plan = data.pipeline.named_steps["columns"]
    for _, branch, cols in plan.transformer_.transformers_:
        if name in list(cols) and hasattr(branch, "named_steps") and "scale" in branch.named_steps:
            return branch.named_steps["scale"], list(cols).index(name)
    raise AssertionError(name)


def test_pipeline_is_fitted_on_train_rows_only(messy_data):
    scaler, j = fitted_scaler(messy_data, "visits")
    train = messy_data.frame("train")["visits"].astype(float)
    everything = messy_data.table.frame["visits"].astype(float)
    assert scaler.mean_[j] == pytest.approx(train.mean())
    assert scaler.mean_[j] != pytest.approx(everything.mean())
    x_train, _ = messy_data.arrays("train")
    x_val, _ = messy_data.arrays("val")
    k = messy_data.feature_names.index("visits")
    assert abs(x_train[:, k].mean()) < 1e-5 and abs(x_val[:, k].mean()) > 1e-3


def test_loaders_and_linked_values(messy_csv):
    data = TabularData(
        source="csv",
        path=str(messy_csv),
        target="churn",
        batch_size=32,
        pipeline={"categorical": {"encode": "embedding"}},
    )
    x, y, index = next(iter(data.train_dataloader()))
    assert x.shape == (32, data.num_features) and x.dtype.is_floating_point
    assert y.dtype.is_signed and not y.dtype.is_floating_point
    assert data.num_features == data.num_numeric + len(data.cardinalities)
    train = data.frame("train")
    assert data.cardinalities == [8, 4, train["product"].nunique() + 1, 41]  # city: + "missing"
    codes = data.arrays("val")[0][:, data.num_numeric :]
    assert (codes >= 0).all() and (codes < np.asarray(data.cardinalities)).all()
    rows = data.frame("train").loc[index.numpy()]
    labels = np.searchsorted(data.class_names, rows["churn"].to_numpy())
    assert (labels == y.numpy()).all()
    regression = TabularData(source="builtin", path="diabetes", target="target")
    assert regression.task_kind == "regression" and regression.num_classes == 1
    assert regression.arrays("val")[1].dtype == np.float32


def test_impute_strategies_and_indicator(tiny):
    x = tiny["x"]
    for strategy, expected in (
        ("mean", x.mean()),
        ("median", x.median()),
        ("constant", -1.0),
    ):
        cfg = options(missing={"numeric": strategy, "fill_value": -1.0})
        _, matrix, _, names = fitted(tiny, cfg)
        assert column(matrix, names, "x")[1] == pytest.approx(expected, rel=1e-5)
    ties = tiny.assign(x=[np.nan, 3.0, 3.0] + list(range(57)))
    _, matrix, _, names = fitted(ties, options(missing={"numeric": "most_frequent"}))
    assert column(matrix, names, "x")[0] == 3.0
    _, matrix, _, names = fitted(tiny, options(missing={"indicator": True}))
    assert column(matrix, names, "x_missing").tolist() == [0.0, 1.0] + [0.0] * 58
    holes = tiny.assign(cat=[None] * 5 + list(tiny["cat"][5:]))
    _, matrix, _, names = fitted(holes, options(missing={"categorical": "constant"}))
    assert column(matrix, names, "cat_missing")[:5].tolist() == [1.0] * 5
    mode = holes["cat"].mode()[0]
    _, matrix, _, names = fitted(holes, options(missing={"categorical": "most_frequent"}))
    assert column(matrix, names, f"cat_{mode}")[:5].tolist() == [1.0] * 5


def test_drop_columns_and_rows_over_missing_share(tiny):
    frame = tiny.assign(sparse=[1.0, 2.0] * 10 + [np.nan] * 40)
    pipeline, _, _, names = fitted(frame, options(missing={"drop_columns_over": 0.5}))
    assert "sparse" not in names
    assert reasons(pipeline, "drop_column")["sparse"].startswith("67% missing in train")
    _, _, _, names = fitted(frame, options(missing={"drop_columns_over": 0.8}))
    assert "sparse" in names
    frame.loc[3:5, ["x", "pos", "neg"]] = np.nan
    pipeline, matrix, keep, _ = fitted(frame, options(missing={"drop_rows_over": 0.5}))
    assert keep.sum() == 57 and not keep[3:6].any() and len(matrix) == 57
    assert reasons(pipeline, "drop_rows")["*"].startswith("3 train row(s)")


def test_outliers_clip_and_flag(tiny):
    x = tiny["x"].dropna()
    q1, q3 = np.percentile(x, [25, 75])
    pipeline, matrix, _, names = fitted(tiny, options(outliers={"handle": "clip", "rule": "iqr"}))
    assert column(matrix, names, "x")[0] == pytest.approx(q3 + 1.5 * (q3 - q1), rel=1e-5)
    assert "1 train value(s) outside" in reasons(pipeline, "clip")["x"]
    _, matrix, _, names = fitted(
        tiny, options(outliers={"handle": "clip", "rule": "zscore", "factor": 2.0})
    )
    assert column(matrix, names, "x")[0] == pytest.approx(x.mean() + 2 * x.std(ddof=0), rel=1e-5)
    _, matrix, _, names = fitted(tiny, options(outliers={"handle": "flag"}))
    assert column(matrix, names, "x_outlier")[0] == 1.0 and column(matrix, names, "x")[0] == 100.0


def test_transforms(tiny):
    for name, func in (("log", np.log1p), ("sqrt", np.sqrt)):
        _, matrix, _, names = fitted(tiny, options(transform={"columns": {"pos": name}}))
        assert np.allclose(column(matrix, names, "pos"), func(tiny["pos"]), rtol=1e-5)
    _, matrix, _, names = fitted(tiny, options(transform={"columns": {"neg": "yeo-johnson"}}))
    expected = PowerTransformer(standardize=False).fit_transform(tiny[["neg"]])[:, 0]
    assert np.allclose(column(matrix, names, "neg"), expected, rtol=1e-4)
    _, matrix, _, names = fitted(tiny, options(transform={"columns": {"pos": "box-cox"}}))
    expected = PowerTransformer("box-cox", standardize=False).fit_transform(tiny[["pos"]])[:, 0]
    assert np.allclose(column(matrix, names, "pos"), expected, rtol=1e-4)
    pipeline, _, _, _ = fitted(tiny, options(transform={"columns": {"neg": "box-cox"}}))
    assert "Yeo-Johnson instead" in reasons(pipeline, "transform")["neg"]
    pipeline, _, _, _ = fitted(tiny, options(transform={"default": "auto"}))
    auto = reasons(pipeline, "transform")
    assert "log1p" in auto["pos"] and "neg" not in auto  # skewed vs. symmetric


def test_bucketing(tiny):
    for strategy in ("quantile", "uniform"):
        cfg = options(bucket={"columns": ["pos"], "bins": 4, "strategy": strategy, "replace": True})
        _, matrix, _, names = fitted(tiny, cfg)
        bins = [n for n in names if n.startswith("pos_")]
        assert len(bins) == 4 and "pos" not in names
        onehot = matrix[:, [names.index(b) for b in bins]]
        assert (onehot.sum(axis=1) == 1).all()
        counts = onehot.sum(axis=0)
        if strategy == "quantile":
            assert counts.tolist() == [15, 15, 15, 15]
        else:  # equal widths on a skewed column: most rows in the first bin
            assert counts[0] > 30


def test_date_decomposition():
    frame = pd.DataFrame(
        {
            "when": ["2024-03-15 13:00", "2023-12-31 23:00", "2024-07-01 00:00", None] * 5,
            "y": [1.0, 2.0, 3.0, 4.0] * 5,
        }
    )
    _, matrix, _, names = fitted(frame, options())
    assert (
        column(matrix, names, "when_year")[0] == 2024
        and column(matrix, names, "when_month")[0] == 3
    )
    assert (
        column(matrix, names, "when_weekday")[0] == 4
        and column(matrix, names, "when_hour")[0] == 13
    )
    assert column(matrix, names, "when_month_sin")[0] == pytest.approx(np.sin(2 * np.pi * 2 / 12))
    assert column(matrix, names, "when_hour_cos")[1] == pytest.approx(np.cos(2 * np.pi * 23 / 24))
    _, _, _, names = fitted(frame, options(dates={"parts": ["month"], "cyclic": False}))
    assert [n for n in names if n.startswith("when")] == ["when_month"]


def test_category_encodings(tiny):
    unseen = tiny.assign(cat="z")
    pipeline, matrix, _, names = fitted(tiny, options())
    assert {"cat_a", "cat_b", "cat_c"} <= set(names)
    assert matrix[:, [names.index(f"cat_{c}") for c in "abc"]].sum(axis=1).tolist() == [1.0] * 60
    assert pipeline.transform(unseen)[:, [names.index(f"cat_{c}") for c in "abc"]].sum() == 0
    pipeline, matrix, _, names = fitted(tiny, options(categorical={"encode": "ordinal"}))
    codes = {"a": 0.0, "b": 1.0, "c": 2.0}
    assert column(matrix, names, "cat").tolist() == [codes[c] for c in tiny["cat"]]
    assert (column(pipeline.transform(unseen), names, "cat") == -1).all()
    pipeline, matrix, _, names = fitted(tiny, options(categorical={"encode": "target"}))
    encoded = column(matrix, names, "cat")
    assert ((encoded > 0) & (encoded < 1)).all()
    # cross-fitted: the train rows' encodings are not what the fully fitted encoder gives them
    assert not np.allclose(encoded, column(pipeline.transform(tiny), names, "cat"))
    pipeline, matrix, _, names = fitted(tiny, options(categorical={"encode": "embedding"}))
    features = describe_features(pipeline)
    assert names[-1] == "cat" and features["num_numeric"] == len(names) - 1
    assert features["cardinalities"] == [4]
    assert set(matrix[:, -1]) == {1.0, 2.0, 3.0} and (pipeline.transform(unseen)[:, -1] == 0).all()


def test_group_aggregates(tiny):
    cfg = options(aggregates=[{"column": "neg", "by": "cat", "stats": ["mean", "count"]}])
    pipeline, matrix, _, names = fitted(tiny, cfg)
    means = tiny.groupby("cat")["neg"].mean()
    assert np.allclose(column(matrix, names, "neg_mean_by_cat"), tiny["cat"].map(means), rtol=1e-5)
    assert (
        column(matrix, names, "neg_count_by_cat").tolist()
        == tiny["cat"].map(tiny["cat"].value_counts()).astype(float).tolist()
    )
    out = pipeline.transform(tiny.assign(cat="z"))
    assert np.allclose(column(out, names, "neg_mean_by_cat"), tiny["neg"].mean(), rtol=1e-5)
    assert (column(out, names, "neg_count_by_cat") == 0).all()
    with pytest.raises(UserError, match="aggregates\\[0\\].column names 'y'"):
        fitted(tiny, options(aggregates=[{"column": "y", "by": "cat"}]))


def test_scaling(tiny):
    _, matrix, _, names = fitted(tiny, options(scale="standard"))
    neg = column(matrix, names, "neg")
    assert abs(neg.mean()) < 1e-5 and neg.std() == pytest.approx(1.0, rel=1e-4)
    _, matrix, _, names = fitted(tiny, options(scale="minmax"))
    assert column(matrix, names, "neg").min() == 0.0
    assert column(matrix, names, "neg").max() == pytest.approx(1.0)


def test_feature_selection(tiny):
    rng = np.random.default_rng(1)
    frame = tiny.assign(
        flat=1.0,
        rare=[1.0] + [0.0] * 59,
        twin=tiny["neg"] * 2 + rng.normal(0, 1e-3, 60),
        signal=(tiny["y"] == "q").astype(float) + rng.normal(0, 0.1, 60),
    )
    kinds = {"flat": "numeric", "rare": "numeric"}
    select = {"constant": True, "near_constant": 0.98, "correlated": 0.95}
    pipeline, _, _, names = fitted(frame, options(select=select), kinds=kinds)
    dropped = reasons(pipeline, "select")
    assert dropped["flat"] == "constant on train"
    assert dropped["rare"].startswith("near-constant: one value in 98.3%")
    assert dropped["twin"].startswith("correlation 1.000 with 'neg'")
    assert not {"flat", "rare", "twin"} & set(names) and "neg" in names
    pipeline, _, _, names = fitted(
        frame.drop(columns=["flat", "rare"]), options(select={"mutual_info_top_k": 1})
    )
    assert names == ["signal"]
    assert "ranks" in reasons(pipeline, "select")["neg"]


# --- the run record ------------------------------------------------------------------------------


def test_run_record_and_reuse(tmp_path, messy_csv, messy_data, capsys):
    run = tmp_path / "run"
    run.mkdir()
    messy_data.write_records(run)
    for name in (
        "data_manifest.csv",
        "splits.csv",
        "skipped_files.csv",
        "data.json",
        "schema.json",
        "pipeline.json",
    ):
        assert (run / name).is_file(), name
    info = json.loads((run / "data.json").read_text())
    assert info["fingerprint"] == messy_data.fingerprint and info["num_classes"] == 2
    assert not {"mean", "std", "channels"} & set(info)  # the image keys Run.load_data passes on
    record = json.loads((run / "pipeline.json").read_text())
    assert (
        record["steps"] == messy_data.steps
        and "mlcycle.tables.steps.Coerce" in record["custom_steps"]
    )
    assert record["config"]["missing"]["numeric"] == "median"
    assert hash_of_test_split(run) is not None  # the sealed test set's ledger hashes its rows
    again = TabularData(
        source="csv", path=str(messy_csv), target="ignored", split_file=str(run / "splits.csv")
    )
    assert again.table.splits == messy_data.table.splits
    assert again.schema.to_dict() == messy_data.schema.to_dict()  # the run's schema.json
    assert (
        compare_params(record["learned"], json.loads(json.dumps(learned_params(again.pipeline))))
        == []
    )
    assert "differs" not in capsys.readouterr().err
    messy_data.check_unchanged_since(run)
    changed = messy().assign(age=lambda f: f["age"] + 1)
    changed.to_csv(tmp_path / "changed.csv", index=False)
    moved = TabularData(source="csv", path=str(tmp_path / "changed.csv"), target="churn")
    with pytest.raises(UserError, match="changed since this run started"):
        moved.check_unchanged_since(run)


def test_id_column_keys_rows_and_must_be_unique(tmp_path, messy_csv):
    data = TabularData(source="csv", path=str(messy_csv), target="churn", id_column="customer_id")
    assert data.schema.column("customer_id").dropped == "the id column (data.id_column)"
    assert data.table.keys[0] == messy()["customer_id"][0]
    twice = messy(rows=50)
    twice.loc[1, "customer_id"] = twice.loc[0, "customer_id"]
    twice.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(UserError, match="data.id_column 'customer_id' has '.*' 2 times"):
        TabularData(
            source="csv", path=str(tmp_path / "twice.csv"), target="churn", id_column="customer_id"
        ).setup()
