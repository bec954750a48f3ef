"""ensemble.py on tiny trained runs and a tiny comparison: run directories that evaluate.py,
export.py and predict.py use unchanged; combinations; mismatches; the sealed test split."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from conftest import run_train, write_folder
from export_helpers import PREDICT

from mlcycle.commands.ensemble import main
from mlcycle.evaluators.classification import collect
from mlcycle.run.loader import Run
from mlcycle.selection.ensemble import combine

TRAIN = ("--data.val_fraction=0.3", "--data.train_transforms=[]", "--trainer.max_epochs=2")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two runs on one split (the second normalized differently), one on other classes and
    one at another image size."""
    base = tmp_path_factory.mktemp("ensemble_runs")
    data = write_folder(base / "images", per_class=16)
    other = write_folder(base / "other", per_class=8, classes=("stripes_h", "stripes_v", "ring"))
    return {
        "a": run_train(data, base / "a", *TRAIN),
        "b": run_train(
            data, base / "b", *TRAIN, "--model.lr=0.003", "--data.mean=[0.4]", "--data.std=[0.3]"
        ),
        "other": run_train(other, base / "other_run", "--data.train_transforms=[]"),
        "big": run_train(data, base / "big", "--data.image_size=20", "--data.train_transforms=[]"),
        "images": data,
    }


def build(runs: dict[str, Path], out: Path, method: str) -> tuple[Path, dict, dict]:
    done = main(["--runs", str(runs["a"]), str(runs["b"]), "--method", method, "--out", str(out)])
    assert done == out
    return (
        out,
        json.loads((out / "ensemble.json").read_text()),
        json.loads((out / "metrics.json").read_text()),
    )


def val_probs(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """A run's val probabilities through its task's predict_step, on its own data."""
    run = Run(run_dir)
    out = collect(run.load_model(), run.load_data(num_workers=0), "val")
    return out["probs"].numpy(), out["index"].numpy()


@pytest.fixture(scope="module")
def soft(runs, tmp_path_factory) -> tuple[Path, dict, dict]:
    return build(runs, tmp_path_factory.mktemp("soft") / "ens", "soft")


def test_soft_ensemble_is_the_mean_of_its_members_and_evaluate_scores_it(runs, soft):
    from mlcycle.commands.evaluate import main as evaluate

    out, record, metrics = soft
    assert [m["name"] for m in record["members"]] == ["a", "b"]
    for member, name in zip(record["members"], "ab", strict=True):
        ckpt = runs[name] / "checkpoints" / "best.ckpt"
        assert member["networks"][0]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert (out / "splits.csv").read_text() == (runs["a"] / "splits.csv").read_text()
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["model"]["class_path"] == "mlcycle.images.selection.ensemble_task.EnsembleTask"
    model = Run(out).load_model()
    assert not any(m.training for m in model.model.modules())
    model.model.train()  # asked to train, the net stays deterministic
    assert not any(m.training for m in model.model.modules())

    (pa, ia), (pb, ib), (pe, ie) = (val_probs(p) for p in (runs["a"], runs["b"], out))
    assert np.array_equal(ia, ie) and np.array_equal(ib, ie)
    assert np.abs(pe - (pa + pb) / 2).max() < 1e-5

    result = evaluate(["--run", str(out), "--split", "val"])
    assert result["images"] == len(pe) and result["checkpoint"] == "checkpoints/best.ckpt"
    assert result["metrics"]["f1"] == pytest.approx(metrics["val/f1"], abs=1e-4)
    assert "val" in metrics["scored_on"] and metrics["ensemble"]["method"] == "soft"
    assert not (out / "test_ledger.jsonl").exists() and not (out / "eval_test.json").exists()


@pytest.mark.parametrize("method", ["weighted", "stacking", "all"])
def test_fitted_methods_make_run_dirs_evaluate_scores(runs, tmp_path, method, capsys):
    from mlcycle.commands.evaluate import main as evaluate

    out, record, metrics = build(runs, tmp_path / "ens", method)
    printed = capsys.readouterr().out
    shown = "stacking" if method == "all" else method
    assert "best single:" in printed and f"{shown} (cross-fitted)" in printed
    assert set(record["methods"]) == (set(combine.METHODS) if method == "all" else {method})
    chosen = record["method"]
    assert chosen in combine.METHODS and (method == "all" or chosen == method)
    combination = record["combination"]
    if chosen in ("soft", "weighted"):
        weights = np.array(combination["weights"])
        assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    if "weighted" in record["methods"]:
        fitted = record["methods"]["weighted"]
        assert fitted["cross_fitted"] is True
        weights = np.array(fitted["combination"]["weights"])
        assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
        if chosen == "weighted":
            assert [m["weight"] for m in record["members"]] == list(weights)
    if chosen == "stacking":
        assert np.array(combination["coef"]).shape == (3, 2 * 3)
    # metrics.json holds the held-out (cross-fitted) scores of the chosen method
    assert metrics["val/f1"] == record["methods"][chosen]["scores"]["f1"]
    result = evaluate(["--run", str(out), "--split", "val"])
    in_sample = record["methods"][chosen]["scores_in_sample"]["f1"]
    assert result["metrics"]["f1"] == pytest.approx(in_sample, abs=1e-4)
    assert not (out / "test_ledger.jsonl").exists()


def test_weighted_weights_lower_the_log_loss_and_favour_the_better_member():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, 200)
    good = np.full((200, 3), 0.1)
    good[np.arange(200), target] = 0.8
    noise = rng.dirichlet(np.ones(3), 200)
    probs = np.stack([good, noise, (good + noise) / 2])
    weights = np.array(combine.fit_weighted(probs, target).weights)
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    assert weights.argmax() == 0

    def loss(p):
        return -np.log(p[np.arange(200), target]).mean()

    assert loss(np.tensordot(weights, probs, 1)) <= loss(probs.mean(axis=0)) + 1e-9
    # stacking of two classes: sklearn's single row becomes softmax([0, z]) = sigmoid(z)
    binary = probs[:, :, :2] / probs[:, :, :2].sum(axis=2, keepdims=True)
    two = (target > 0).astype(int)
    stacked = combine.fit_stacking(binary, two, 2)
    assert np.array(stacked.coef).shape == (2, 3 * 2)
    assert (combine.apply(stacked, binary).argmax(1) == two).mean() > 0.9


def test_export_writes_one_onnx_graph_that_equals_the_eager_ensemble(runs, soft, tmp_path):
    import importlib.util

    from mlcycle.commands.export import main as export

    out, _, _ = soft
    result = export(["--run", str(out)])
    folder = out / "export"
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["model.onnx"]
    assert (folder / "model.ts").is_file() and result["report"]["passed"] is True
    assert json.loads((folder / "model.json").read_text())["arch"] == "ensemble"

    model = Run(out).load_model()
    data = Run(out).load_data(num_workers=0)
    x = torch.stack([data.dataset("val")[i][0] for i in range(len(data.dataset("val")))]).float()
    with torch.no_grad():
        eager = model(x).numpy()
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"input": x.numpy()})[0] - eager).max() < 1e-4

    spec = importlib.util.spec_from_file_location("predict_script", PREDICT)
    predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predict)
    assert predict.main([str(folder / "model.onnx"), str(runs["images"] / "blob")]) == 0


def test_shortlist_from_a_small_comparison(tmp_path, capsys):
    from mlcycle.commands.compare import main as compare
    from mlcycle.commands.evaluate import main as evaluate
    from mlcycle.selection.compare.analysis import macro_f1

    data = write_folder(tmp_path / "images", per_class=12)
    deep = ["--data.image_size=16", "--data.batch_size=8", "--trainer.max_epochs=1"]
    spec = {
        "train": ["configs/image_folder.yaml"],
        "args": [
            f"--data.root={data}",
            "--model.arch=small_cnn",
            "--data.train_transforms=[]",
            *deep,
        ],
        "folds": 2,
        "classic_size": 16,
        "candidates": [
            {"name": "cnn_fast", "args": ["--model.lr=0.01"]},
            {"name": "cnn_slow", "args": ["--model.lr=0.003"]},
            {  # classic, so left out; on embeddings, which keeps compare.py quick
                "name": "logistic",
                "estimator": "sklearn.linear_model.LogisticRegression",
                "features": "embeddings:cnn_fast",
            },
        ],
    }
    config = tmp_path / "cmp.yaml"
    config.write_text(yaml.safe_dump(spec))
    folder = tmp_path / "cmp"
    compare(["--config", str(config), "--out", str(folder)])
    capsys.readouterr()
    # one-epoch models on tiny data may not all make compare.py's shortlist: name the members
    members = []
    for name in ("cnn_fast", "cnn_slow", "logistic"):
        entry = {"name": name, "family": "classic" if name == "logistic" else "deep"}
        if name != "logistic":
            entry["runs"] = [str(folder / "candidates" / name / f"fold{k}") for k in range(2)]
        entry["oof"] = str(folder / "candidates" / name / "oof.npz")
        members.append(entry)
    shortlist = folder / "shortlist_test.yaml"
    shortlist.write_text(yaml.safe_dump({"comparison": str(folder), "members": members}))

    out = main(
        [
            "--shortlist",
            str(shortlist),
            "--method",
            "all",
            "--out",
            str(tmp_path / "ens"),
        ]
    )
    printed = capsys.readouterr().out
    assert "left out: logistic (classic" in printed
    record = json.loads((out / "ensemble.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert {m["name"] for m in record["members"]} == {"cnn_fast", "cnn_slow"}
    assert all(len(m["networks"]) == 2 for m in record["members"])  # a bag of the fold models
    assert record["left_out"][0]["name"] == "logistic"
    assert "out-of-fold" in metrics["scored_on"]
    assert record["methods"]["stacking"]["cross_fitted"] is True
    # soft voting's score is that of the mean out-of-fold probabilities
    oof = [np.load(folder / "candidates" / m["name"] / "oof.npz") for m in record["members"]]
    mean = np.mean([o["probs"] for o in oof], axis=0)
    assert record["methods"]["soft"]["scores"]["f1"] == pytest.approx(
        macro_f1(mean, oof[0]["target"], 3), abs=1e-5
    )
    assert (out / "splits.csv").read_text() == (folder / "folds" / "fold0.csv").read_text()
    assert evaluate(["--run", str(out), "--split", "val"])["images"] > 0
    assert not list(out.rglob("test_ledger.jsonl")) and not list(folder.rglob("test_ledger.jsonl"))


@pytest.mark.parametrize(
    ("member", "message"),
    [("other", "the same class names"), ("big", "image size 20x20, the ensemble's is 16x16")],
)
def test_mismatched_members_fail_in_one_line(runs, tmp_path, capsys, member, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--runs", str(runs["a"]), str(runs[member]), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "soft"], "give --runs RUN_A RUN_B ... or --shortlist FILE"),
        (["--runs", "/no/such/run", "/no/other"], "does not exist"),
        (["--shortlist", "/no/shortlist.yaml"], "does not exist"),
    ],
)
def test_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
