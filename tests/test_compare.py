"""compare.py on tiny generated images: folds, leaderboard, resume, failures, a sealed test."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import tree_digest, write_folder

from mlcycle.core.errors import UserError
from mlcycle.selection.compare.spec import load_spec
from mlcycle.selection.folds import assign_folds

DEEP_ARGS = [
    "--data.image_size=16",
    "--data.batch_size=8",
    "--trainer.max_epochs=1",
    "--data.train_transforms=[]",
]


def write_config(path: Path, data_root: Path, candidates: list[dict], **extra) -> Path:
    config = {
        "train": ["configs/image_folder.yaml"],
        "args": [f"--data.root={data_root}", "--model.arch=small_cnn", *DEEP_ARGS],
        "folds": 2,
        "classic_size": 16,
        "objective": {"metric": "val/f1", "min": 0.5, "max_latency_ms": 1000},
        "candidates": candidates,
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return path


CANDIDATES = [
    {"name": "cnn", "args": ["--model.lr=0.01"]},
    {"name": "logistic", "estimator": "sklearn.linear_model.LogisticRegression"},
    {"name": "knn_pca", "estimator": "sklearn.neighbors.KNeighborsClassifier", "pca": 4},
    {
        "name": "logistic_on_cnn",
        "estimator": "sklearn.linear_model.LogisticRegression",
        "features": "embeddings:cnn",
    },
    {"name": "broken", "estimator": "sklearn.svm.SVC", "params": {"kernel": "no-such-kernel"}},
]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    from mlcycle.commands.compare import main

    base = tmp_path_factory.mktemp("compare")
    data = write_folder(base / "images", per_class=12)
    config = write_config(base / "cmp.yaml", data, CANDIDATES)
    out = base / "out"
    before = tree_digest(data)
    summary = main(["--config", str(config), "--out", str(out)])
    assert tree_digest(data) == before  # the user's images are untouched
    return {"out": out, "summary": summary, "config": config, "data": data, "base": base}


def test_folds_are_stratified_content_stable_and_keep_duplicates_together():
    hashes = [f"h{i}" for i in range(30)] + ["h0"]  # h0 twice: a duplicate
    labels = ["a"] * 15 + ["b"] * 15 + ["a"]
    folds = assign_folds(hashes, labels, 3, seed=1)
    assert folds[0] == folds[30]
    for label in "ab":
        counts = np.bincount([f for f, x in zip(folds, labels, strict=True) if x == label])
        assert counts.max() - counts.min() <= 2
    order = list(reversed(range(31)))
    again = assign_folds([hashes[i] for i in order], [labels[i] for i in order], 3, seed=1)
    assert [again[order.index(i)] for i in range(31)] == folds
    with pytest.raises(UserError, match="at least 4"):
        assign_folds(hashes[:3], ["a", "a", "a"], 4, seed=1)


def test_leaderboard_ranks_every_candidate_and_lists_the_failed_one(comparison):
    out = comparison["out"]
    board = list(csv.DictReader((out / "leaderboard.csv").open()))
    rows = [r for r in board if r["kind"] == "candidate"]  # the baselines: test_baselines.py
    names = [r["candidate"] for r in rows]
    assert set(names) == {c["name"] for c in CANDIDATES}
    assert names[-1] == "broken" and "kernel" in rows[-1]["error"]
    finished = [r for r in rows if r["mean"]]
    means = [float(r["mean"]) for r in finished]
    assert means == sorted(means, reverse=True)
    for row in finished:
        assert len(row["folds"].split()) == 2
        assert float(row["latency_ms"]) > 0 and float(row["size_mb"]) > 0 and int(row["params"]) > 0
        assert row["gate"] in ("pass", "FAIL") and row["budget"] in ("pass", "FAIL")
    assert float(finished[0]["mean"]) > 0.6  # the patterns are easy
    html = (out / "leaderboard.html").read_text()
    assert html.count("data:image/png;base64") >= 4 and "<script" not in html
    assert (out / "leaderboard.md").read_text().count("\n|") >= len(CANDIDATES) + 1
    for figure in ("leaderboard", "per_class_f1", "error_correlation"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000


def test_deep_folds_are_normal_runs_and_oof_covers_train_val_only(comparison):
    out = comparison["out"]
    fold = out / "candidates" / "cnn" / "fold1"
    assert (fold / "checkpoints" / "best.ckpt").is_file()
    assert json.loads((fold / "metrics.json").read_text())["status"] == "finished"
    oof = np.load(out / "candidates" / "cnn" / "oof.npz")
    manifest = list(csv.DictReader((fold / "data_manifest.csv").open()))
    test = {r["path"] for r in manifest if r["split"] == "test"}
    assert test and not test & set(oof["paths"].tolist())
    assert len(oof["paths"]) + len(test) == len(manifest)
    assert np.allclose(oof["probs"].sum(axis=1), 1, atol=1e-4)
    # each image is predicted by the fold model that did not train on it
    splits = {r["path"]: r["split"] for r in csv.DictReader((fold / "splits.csv").open())}
    assert all(
        (splits[p] == "val") == (f == 1) for p, f in zip(oof["paths"], oof["folds"], strict=True)
    )
    assert not list(out.rglob("test_ledger.jsonl")) and not list(out.rglob("eval_test.json"))


def test_shortlist_and_analysis(comparison):
    out = comparison["out"]
    shortlist = yaml.safe_load((out / "shortlist.yaml").read_text())
    members = [m["name"] for m in shortlist["members"]]
    assert 1 <= len(members) <= 4 and "broken" not in members
    assert shortlist["ensemble_f1"] >= 0 and shortlist["rule"]
    rows = {r["candidate"]: r for r in csv.DictReader((out / "leaderboard.csv").open())}
    assert all(rows[m]["gate"] == "pass" for m in members)  # only models good enough
    for member in shortlist["members"]:
        if member["family"] == "deep":
            assert len(member["runs"]) == 2 and all(Path(r).is_dir() for r in member["runs"])
    summary = json.loads((out / "leaderboard.json").read_text())
    corr = summary["error_correlation"]
    passing = [name for name, row in rows.items() if row["gate"] == "pass"]
    assert sorted(corr["names"]) == sorted(passing)  # the models worth keeping


def test_rerun_resumes_without_refitting(comparison, capsys):
    from mlcycle.commands.compare import main

    out = comparison["out"]
    marker = out / "candidates" / "cnn" / "fold0" / "selection_fold.json"
    before = marker.stat().st_mtime_ns
    main(["--config", str(comparison["config"]), "--out", str(out), "--only", "cnn,logistic"])
    assert marker.stat().st_mtime_ns == before
    assert "cnn" in capsys.readouterr().out


def test_bad_configs_fail_in_one_line(tmp_path, capsys):
    from mlcycle.commands.compare import main

    data = write_folder(tmp_path / "images", per_class=4)
    cases = [
        (
            [{"name": "x", "estimator": "sklearn.svm.SVC", "bogus": 1}],
            "unknown key 'candidates.bogus'",
        ),
        ([{"name": "x", "estimator": "sklearn.linear_model.Nope"}], "cannot be imported"),
        (
            [{"name": "x", "estimator": "sklearn.svm.SVC", "features": "embeddings:cnn"}],
            "names no deep",
        ),
    ]
    for candidates, message in cases:
        config = write_config(tmp_path / "c.yaml", data, candidates)
        if "Nope" in str(candidates):
            spec = load_spec(config)
            from mlcycle.selection.compare.classic import build_estimator

            with pytest.raises(UserError, match=message):
                build_estimator(spec.candidates[0], 0)
            continue
        with pytest.raises(SystemExit) as exit_info:
            main(["--config", str(config), "--out", str(tmp_path / "o")])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err
    with pytest.raises(SystemExit):
        main(["--config", str(tmp_path / "missing.yaml")])
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_segmentation_candidates_are_ranked_by_their_runs(tmp_path):
    from mlcycle.commands.compare import main
    from mlcycle.data.shapes import write_shape_masks

    root = write_shape_masks(tmp_path / "shapes", count=24, size=24)
    config = tmp_path / "seg.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "train": ["configs/segment_quickstart.yaml"],
                "args": [
                    f"--data.root={root}",
                    "--data.image_size=24",
                    "--data.batch_size=8",
                    "--trainer.max_epochs=1",
                    "--model.arch_options={width: 4, depth: 2}",
                ],
                "folds": 2,
                "candidates": [
                    {"name": "unet", "args": []},
                    {"name": "knn", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
                ],
            }
        )
    )
    summary = main(["--config", str(config), "--out", str(tmp_path / "out")])
    rows = {r["candidate"]: r for r in summary["rows"]}
    assert summary["metric"] == "val/iou"
    assert 0 <= rows["unet"]["mean"] <= 1 and len(rows["unet"]["folds"]) == 2
    assert "classification" in rows["knn"]["error"]
    assert summary["shortlist"] is None
    assert (
        tmp_path / "out" / "candidates" / "unet" / "fold1" / "checkpoints" / "best.ckpt"
    ).is_file()


@pytest.mark.parametrize(
    "path",
    sorted(
        str(p) for p in (Path(__file__).resolve().parents[1] / "configs" / "compare").glob("*.yaml")
    ),
)
def test_shipped_comparisons_parse_and_their_deep_candidates_resolve(path):
    from mlcycle.selection.compare.kinds import comparison_kind
    from mlcycle.selection.config import resolve_config
    from mlcycle.tables.selection.compare import TableComparison

    spec = load_spec(path)
    base = [a for c in spec.train for a in ("--config", c)] + spec.args
    kind = comparison_kind(resolve_config(base))
    if kind is TableComparison:  # every candidate is a train.py run
        for candidate in spec.candidates:
            config = resolve_config([*base, *kind.candidate_args(candidate)])
            assert config["model"]["class_path"].startswith("mlcycle.tables.")
        return
    for candidate in spec.candidates:
        extra = kind.candidate_args(candidate)
        if extra is not None:  # a deep candidate: train.py runs
            config = resolve_config([*base, *extra])
            assert config["model"]["init_args"]["arch"]
        else:
            from mlcycle.selection.compare.classic import build_estimator

            build_estimator(candidate, 0)


def test_a_fold_run_is_evaluated_and_exported_like_any_run(comparison, capsys):
    from mlcycle.commands.evaluate import main as evaluate
    from mlcycle.commands.export import main as export

    fold = comparison["out"] / "candidates" / "cnn" / "fold0"
    config = yaml.safe_load((fold / "config.yaml").read_text())
    assert config["objective"]["min"] == 0.5  # the comparison's objective reached the run
    result = evaluate(["--run", str(fold), "--split", "val"])
    oof = json.loads((fold / "selection_fold.json").read_text())["scores"]
    assert result["metrics"]["f1"] == pytest.approx(oof["f1"], abs=1e-4)
    exported = export(["--run", str(fold), "--format", "onnx", "--force"])
    assert exported["report"]["passed"]
