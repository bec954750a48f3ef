"""The Python API (``mlcycle.train``, ``Run``, ``load``, ``compare``): the same code the
commands run, errors as ``mlcycle.UserError``, on tiny generated data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_folder
from PIL import Image

import mlcycle
from mlcycle.api import WrongType

TINY = {
    "data": {"image_size": 16, "batch_size": 8, "num_workers": 0},
    "model": {"arch": "small_cnn"},
    "trainer": {"max_epochs": 1, "enable_progress_bar": False, "enable_model_summary": False},
}


@pytest.fixture(scope="module")
def api_run(tmp_path_factory) -> mlcycle.Run:
    base = tmp_path_factory.mktemp("api")
    data = write_folder(base / "images")
    return mlcycle.train(
        "configs/image_folder.yaml", **TINY, **{"data.root": data}, run_dir=base / "run"
    )


def test_import_mlcycle_imports_neither_torch_nor_lightning():
    code = "import sys, mlcycle; mlcycle.load; print('torch' in sys.modules or 'lightning' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_train_returns_the_run_with_its_numbers_and_figures(api_run):
    assert isinstance(api_run, mlcycle.Run)
    assert api_run.config["trainer"]["max_epochs"] == 1
    assert api_run.config["model"]["init_args"]["arch"] == "small_cnn"
    assert api_run.metrics["status"] == "finished"
    assert isinstance(api_run.history, pd.DataFrame)
    assert list(api_run.history["epoch"]) == [1]
    assert "loss_curves" in api_run.figures and api_run.figures["loss_curves"].is_file()
    assert mlcycle.Run(str(api_run.path)).path == api_run.path


def test_a_run_shows_its_metrics_gate_curves_and_figures_in_a_notebook(api_run):
    html = api_run._repr_html_()
    assert "val/f1" in html and f"{api_run.metrics['val/f1']:.4f}" in html
    assert html.count("data:image/png;base64,") == 1  # the loss curves
    assert "No objective is set" in html and "Diagnosis: " in html
    assert "<code>misclassified</code>" in html and "<code>loss_curves</code>" not in html
    figure = api_run.figures["misclassified"]
    assert isinstance(figure, Path) and figure.name == "misclassified.png"
    assert figure._repr_png_() == figure.read_bytes() and figure.read_bytes()[:4] == b"\x89PNG"
    assert figure.parent._repr_png_() is None  # a path derived from it shows as text


def test_evaluate_scores_the_split_as_evaluate_py(api_run):
    result = api_run.evaluate("val")
    assert result["split"] == "val" and "f1" in str(result["metrics"])
    assert (api_run.path / "eval_val.json").is_file()
    with pytest.raises(mlcycle.UserError, match="split: 'train'"):
        api_run.evaluate("train")


@pytest.fixture(scope="module")
def exported(api_run) -> Path:
    return api_run.export(format="onnx")


def test_export_then_load_predicts_paths_pil_images_and_arrays_alike(api_run, exported):
    assert (exported / "model.onnx").is_file() and (exported / "model.json").is_file()
    image = sorted((api_run.path.parent / "images" / "blob").glob("*.png"))[0]
    model = mlcycle.load(exported)
    pil = Image.open(image)
    found = model.predict([str(image), pil, np.asarray(pil), np.asarray(pil.convert("RGB"))])
    assert found[0]["path"] == str(image) and found[1]["path"] is None
    classes = [f["top_k"][0]["class"] for f in found]
    assert len(set(classes)) == 1
    done = subprocess.run(
        [sys.executable, "scripts/predict.py", str(exported / "model.onnx"), str(image)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    printed = json.loads(done.stdout.splitlines()[0])
    assert printed == found[0]
    missing = model.predict("no/such.png")
    assert missing == [{"path": "no/such.png", "error": "file not found"}]


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda run, model: mlcycle.train(123), "config"),
        (lambda run, model: mlcycle.train(["a.yaml", None]), "config"),
        (lambda run, model: mlcycle.Run(42), "path"),
        (lambda run, model: mlcycle.load(None), "path"),
        (lambda run, model: mlcycle.Model(3.5), "path"),
        (lambda run, model: model.predict(3.5), "items"),
        (lambda run, model: model.predict(np.zeros((4, 4))), "items"),
        (lambda run, model: model.predict([], top_k="3"), "top_k"),
        (lambda run, model: model.predict([], min_score="high"), "min_score"),
        (lambda run, model: model.predict([], threshold=[0.5]), "threshold"),
        (lambda run, model: model.predict([], masks_dir=1), "masks_dir"),
        (lambda run, model: run.evaluate(1), "split"),
        (lambda run, model: run.evaluate("val", checkpoint=0), "checkpoint"),
        (lambda run, model: run.evaluate("val", batch_size=2.0), "batch_size"),
        (lambda run, model: run.export(format=1), "format"),
        (lambda run, model: run.export(format=["onnx", 2]), "format"),
        (lambda run, model: run.export(opsett=17), "opsett"),
        (lambda run, model: mlcycle.compare(7), "config"),
        (lambda run, model: mlcycle.compare("configs/compare/digits.yaml", folds="2"), "folds"),
        (lambda run, model: mlcycle.compare("configs/compare/digits.yaml", only="svc"), "only"),
        (lambda run, model: mlcycle.compare("configs/compare/digits.yaml", out=1), "out"),
        (lambda run, model: mlcycle.compare("configs/compare/digits.yaml", export="y"), "export"),
        (
            lambda run, model: mlcycle.train("a.yaml", trainer={"max_epochs": object()}),
            "trainer.max_epochs",
        ),
    ],
)
def test_a_wrong_type_is_a_typed_error_naming_the_argument(api_run, exported, call, argument):
    with pytest.raises(WrongType) as info:
        call(api_run, mlcycle.load(exported))
    assert isinstance(info.value, mlcycle.UserError) and isinstance(info.value, TypeError)
    assert str(info.value).startswith(argument) or f"'{argument}'" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_value_out_of_range_is_a_user_error_naming_it(exported):
    model = mlcycle.load(exported)
    for options, argument in (({"top_k": 0}, "top_k"), ({"min_score": 2}, "min_score")):
        with pytest.raises(mlcycle.UserError, match=f"^{argument} must be"):
            model.predict([], **options)


def test_wrong_input_is_one_user_error_naming_it(api_run, exported, tmp_path):
    with pytest.raises(mlcycle.UserError, match="no/such.yaml"):
        mlcycle.train("no/such.yaml")
    with pytest.raises(TypeError, match="config"):
        mlcycle.train(3)
    with pytest.raises(mlcycle.UserError, match="does not exist"):
        mlcycle.Run(tmp_path / "nothing")
    with pytest.raises(mlcycle.UserError, match="does not exist"):
        mlcycle.load(tmp_path / "nothing")
    with pytest.raises(TypeError, match="items"):
        mlcycle.load(exported).predict([1.5])
    with pytest.raises(mlcycle.UserError, match="format: 'tflite'"):
        api_run.export(format="tflite")
    with pytest.raises(mlcycle.UserError, match="at least 2 folds"):
        mlcycle.compare("configs/compare/image_folder.yaml", folds=1)


def test_a_wrong_key_is_the_one_line_train_py_prints(tmp_path):
    with pytest.raises(mlcycle.UserError) as info:
        mlcycle.train("configs/image_folder.yaml", trainer={"max_epoch": 1})
    assert "trainer.max_epoch" in str(info.value) and "\n" not in str(info.value)


def test_overrides_nested_and_dotted_are_the_same_arguments():
    from mlcycle.api.training import train_args

    nested = train_args("a.yaml", {"trainer": {"max_epochs": 3, "logger": False}})
    dotted = train_args(["a.yaml"], {"trainer.max_epochs": 3, "trainer.logger": False})
    assert nested == dotted == [
        "--config", "a.yaml", "--trainer.max_epochs=3", "--trainer.logger=false",
    ]  # fmt: skip


def test_a_table_model_predicts_a_dataframe_and_dicts_as_predict_py_a_csv(tmp_path):
    import yaml
    from test_tables_models import learnable_table

    table = learnable_table(tmp_path / "rows.csv", rows=120)
    config = tmp_path / "table.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "trainer": {"max_epochs": 1, "enable_progress_bar": False},
                "model": {
                    "class_path": "mlcycle.tables.ClassicTabularTask",
                    "init_args": {"estimator": "random_forest", "params": {"n_estimators": 10}},
                },
                "data": {
                    "class_path": "mlcycle.tables.TabularData",
                    "init_args": {
                        "source": "csv",
                        "path": str(table),
                        "target": "label",
                        "drop": ["value"],
                        "id_column": "row_id",
                    },  # fmt: skip
                },
            }
        )
    )
    model = mlcycle.load(mlcycle.train(config, run_dir=tmp_path / "run").export())
    rows = pd.read_csv(table).head(4).drop(columns=["label", "value"])
    rows.to_csv(tmp_path / "four.csv", index=False)
    done = subprocess.run(
        [sys.executable, "scripts/predict.py", str(model.path), "--csv", str(tmp_path / "four.csv")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert model.predict(rows) == printed == model.predict(rows.to_dict("records"))
    with pytest.raises(TypeError, match="rows"):
        model.predict(["a.png"])
