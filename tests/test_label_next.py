"""What to label next: uncertainty and disagreement ranks on known probabilities, k-center on
planted clusters, and label-next end to end on a tiny exported model over generated images,
with the filled CSV brought back into the prediction store and a manifest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mlcycle.commands.label_next import main
from mlcycle.data.sources import csv_source
from mlcycle.data.sql import sql_source
from mlcycle.selection.label_next import scores
from mlcycle.selection.label_next.feedback import TRAINING_QUERY
from mlcycle.selection.label_next.kcenter import k_center
from mlcycle.selection.label_next.pick import choose
from mlcycle.selection.label_next.pool import Pool, stored_vector
from mlcycle.serve.store import PredictionStore, prediction_row

CLASSES = ["dark", "mid", "bright"]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's ONNX exporter


def test_uncertainty_orders_known_probabilities():
    probs = np.array(
        [
            [0.98, 0.01, 0.01],  # sure
            [0.34, 0.33, 0.33],  # unsure everywhere
            [0.500, 0.495, 0.005],  # torn between two
            [0.70, 0.20, 0.10],
        ]
    )
    assert scores.ranking(scores.margin(probs)).tolist() == [2, 1, 3, 0]
    # entropy counts every class: the spread-out row 3 outranks one torn between two
    assert scores.ranking(scores.entropy(probs)).tolist() == [1, 3, 2, 0]
    assert scores.ranking(scores.least_confidence(probs)).tolist() == [1, 2, 3, 0]
    assert scores.entropy(np.full((1, 4), 0.25))[0] == pytest.approx(1.0)
    assert scores.margin(probs)[0] == pytest.approx(1 - 0.97)


def test_disagreement_ranks_disputed_items_first():
    agree, unsure = [0.8, 0.1, 0.1], [0.34, 0.33, 0.33]
    # three members: they split on item 1, agree on item 2 (unsure) and on item 0 (sure)
    members = np.array(
        [
            [agree, [0.9, 0.05, 0.05], unsure],
            [agree, [0.05, 0.9, 0.05], unsure],
            [agree, [0.9, 0.05, 0.05], unsure],
        ]
    )
    for by in ("vote", "kl"):
        ranked = scores.ranking(scores.score(members, by))
        assert ranked.tolist()[0] == 1, by
    assert scores.vote_entropy(members)[2] == pytest.approx(0.0)
    assert scores.mean_kl(members)[0] == pytest.approx(0.0, abs=1e-9)
    # the members' mean is least sure of item 2: entropy alone would ask for it first
    assert scores.ranking(scores.score(members, "entropy"))[0] == 2


def planted(n_per: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = np.array([[10, 0], [0, 10], [-10, 0], [0, -10]], dtype=float)
    points = np.concatenate([c + rng.normal(0, 0.5, (n_per, 2)) for c in centers])
    return points, np.repeat(np.arange(len(centers)), n_per)


def test_k_center_puts_one_pick_in_each_planted_cluster():
    points, cluster = planted()
    picks, distances = k_center(points, 4, first=5)
    assert picks[0] == 5
    assert sorted(cluster[picks].tolist()) == [0, 1, 2, 3]
    assert distances[0] == 0 and min(distances[1:]) > 5


def test_spread_picks_cover_clusters_that_uncertainty_alone_would_not():
    points, cluster = planted()
    n = len(points)
    # cluster 0 is the most uncertain, the others a little less; all are candidates
    gap = np.where(cluster == 0, 0.02, 0.3) + np.linspace(0, 0.01, n)
    probs = np.stack([(0.9 + gap) / 2, (0.9 - gap) / 2, np.full(n, 0.1)], axis=1)
    pool = Pool([f"i{k}" for k in range(n)], probs[None], CLASSES, points, "penultimate output",
                [None] * n, [None] * n)  # fmt: skip
    alone = choose(pool, "margin", 4, spread=False)
    assert {cluster[p.index] for p in alone} == {0}
    spread = choose(pool, "margin", 4, spread=True, candidates=n)
    assert sorted(cluster[p.index] for p in spread) == [0, 1, 2, 3]
    assert spread[0].index == alone[0].index  # the most uncertain still comes first
    assert "far from earlier picks" in spread[1].reason


def test_a_stored_top_k_becomes_a_probability_vector():
    top_k = json.dumps(
        [{"class": "mid", "probability": 0.6}, {"class": "dark", "probability": 0.3}]
    )
    np.testing.assert_allclose(stored_vector(top_k, CLASSES), [0.3, 0.6, 0.1])
    assert stored_vector(json.dumps({"a": 0.2}), CLASSES) is None  # a labels form's dict
    assert stored_vector(None, CLASSES) is None


# --- end to end: a tiny exported classifier (brightness decides the class) ------------------


def tiny_export(folder: Path, seed: int = 0) -> Path:
    """An ONNX classifier of 8x8 grayscale images exported as export.py does (``logits``,
    a model.json of the ``classes`` form), whose hidden layer is the penultimate output."""
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    module = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)
    )
    with torch.no_grad():  # the mean brightness, scaled: dark < 0, mid ~ 0, bright > 0
        module[1].weight.copy_(torch.full((6, 64), 1 / 64) * torch.linspace(-2, 2, 6)[:, None])
        module[1].bias.zero_()
        module[3].weight.copy_(torch.tensor([[3.0, 2, 1, 0, 0, 0], [0, 0, 0.5, 0.5, 0, 0], [0, 0, 0, 1, 2, 3]]))  # fmt: skip
    torch.onnx.export(
        module.eval(), torch.zeros(2, 1, 8, 8), str(folder / "model.onnx"), input_names=["input"],
        output_names=["logits"], dynamic_axes={"input": {0: "batch"}}, dynamo=False,
    )  # fmt: skip
    meta = {
        "format_version": 1,
        "task": "classification",
        "class_names": CLASSES,
        "input": {
            "channels": 1,
            "height": 8,
            "width": 8,
            "mean": [0.5],
            "std": [0.25],
            "shape": ["batch", 1, 8, 8],
        },  # fmt: skip
        "output": {"name": "logits", "kind": "classes", "softmax_applied": False},
    }
    (folder / "model.json").write_text(json.dumps(meta))
    return folder / "model.onnx"


def write_pool(folder: Path, n: int = 30) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        level = int(255 * i / (n - 1))
        pixels = np.clip(rng.normal(level, 4, (10, 10)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"img_{i:02d}.png")
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_label_next_end_to_end_on_a_folder_then_back_into_a_manifest(tmp_path, capsys):
    model = tiny_export(tmp_path / "export")
    pool = write_pool(tmp_path / "data" / "new")
    (pool / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = main(["--model", str(model.parent), "--images", str(pool), "--budget", "5",
                   "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable item(s)" in printed and "broken.png" in printed
    assert "embeddings: penultimate output" in printed
    rows = read_csv(out / "to_label.csv")
    assert len(rows) == 5 == len(set(r["path"] for r in rows))
    assert list(rows[0]) == ["rank", "path", "predicted", "score", "reason", "prediction_id", "label"]  # fmt: skip
    assert all(r["label"] == "" and r["predicted"] in CLASSES for r in rows)
    assert float(rows[0]["score"]) == max(float(r["score"]) for r in rows)
    page = (out / "to_label.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "broken.png" in page
    assert result["picks"] == [r["path"] for r in rows]

    # the person fills two labels; they become manifest rows the CSV source reads
    rows[0]["label"], rows[1]["label"] = "mid", "bright"
    with (out / "to_label.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    manifest = tmp_path / "data" / "labels.csv"
    manifest.write_text("path,label\nold/a.png,dark\n")
    main(["--labeled", str(out / "to_label.csv"), "--manifest", str(manifest),
          "--model", str(model)])  # fmt: skip
    assert "2 row(s) added" in capsys.readouterr().out
    found = csv_source(manifest=str(manifest))
    labels = {s.path.name: s.label for s in found.samples}
    assert labels[Path(rows[0]["path"]).name] == "mid" and labels["a.png"] == "dark"


def test_budget_larger_than_the_pool_is_clamped_in_one_line(tmp_path, capsys):
    model = tiny_export(tmp_path / "export")
    pool = write_pool(tmp_path / "new", n=4)
    main(["--model", str(model), "--images", str(pool), "--budget", "10", "--out", str(tmp_path / "o")])  # fmt: skip
    assert "--budget 10 is more than the 4 unlabeled item(s); picking all 4" in capsys.readouterr().out  # fmt: skip
    assert len(read_csv(tmp_path / "o" / "to_label.csv")) == 4


def test_an_empty_folder_is_one_line_and_exit_2(tmp_path, capsys):
    model = tiny_export(tmp_path / "export")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(model), "--images", str(tmp_path / "empty")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no image files in" in err[0]


def test_fold_members_disagree_and_rank_by_kl(tmp_path, capsys):
    a, b = tiny_export(tmp_path / "a"), tiny_export(tmp_path / "b", seed=1)
    meta = json.loads((tmp_path / "b" / "model.json").read_text())
    (tmp_path / "b" / "model.json").write_text(json.dumps({**meta, "class_names": CLASSES[::-1]}))
    pool = write_pool(tmp_path / "new", n=8)
    with pytest.raises(SystemExit):  # members of different tasks cannot be compared
        main(["--model", str(a), "--model", str(b), "--images", str(pool)])
    assert "differ in their classes" in capsys.readouterr().err
    (tmp_path / "b" / "model.json").write_text(json.dumps(meta))
    main(["--model", str(a), "--model", str(b), "--images", str(pool), "--budget", "3",
          "--out", str(tmp_path / "o")])  # fmt: skip
    assert "by kl" in capsys.readouterr().out
    assert "members disagree" in read_csv(tmp_path / "o" / "to_label.csv")[0]["reason"]


def test_store_rows_are_picked_and_their_labels_become_feedback(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    images = sorted(write_pool(tmp_path / "data" / "batch", n=5).iterdir())
    store = PredictionStore(url)
    confidences = [0.95, 0.40, 0.60, 0.90, 0.34]
    rows = []
    for path, p in zip(images, confidences, strict=True):
        rest = (1 - p) / 2
        top_k = [{"class": "mid", "probability": p}, {"class": "dark", "probability": rest + 0.01},
                 {"class": "bright", "probability": rest - 0.01}]  # fmt: skip
        rows.append(prediction_row(model_version="v1", source="batch", input_name=str(path),
                                   input_sha256=path.name, predicted="mid", confidence=p,
                                   top_k=top_k))  # fmt: skip
    store.add_many(rows)
    store.flush()
    store.add_feedback(rows[4]["id"], "mid")  # already labeled: not in the pool
    store.engine.dispose()
    out = tmp_path / "out"
    main(["--db", url, "--budget", "2", "--spread", "false", "--out", str(out)])
    picked = read_csv(out / "to_label.csv")
    assert [r["path"] for r in picked] == [str(images[1]), str(images[2])]
    assert picked[0]["prediction_id"] == rows[1]["id"]
    assert (out / "to_label.html").read_text().count("data:image/png;base64,") == 2
    picked[0]["label"] = "dark"
    with (out / "to_label.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(picked[0]))
        writer.writeheader()
        writer.writerows(picked)
    capsys.readouterr()
    main(["--labeled", str(out / "to_label.csv"), "--db", url])
    assert "recorded 1 feedback label(s)" in capsys.readouterr().out
    # training reads the labeled images back from the store (data.source: sql)
    found = sql_source(url=url, query=TRAINING_QUERY, root=str(tmp_path / "data"))
    assert {s.path.name: s.label for s in found.samples} == {
        images[1].name: "dark",
        images[4].name: "mid",
    }


def test_a_folder_of_fold_runs_is_every_exported_fold(tmp_path, capsys):
    candidate = tmp_path / "candidates" / "small_cnn"
    for k in range(2):
        tiny_export(candidate / f"fold{k}" / "export", seed=k)
        (candidate / f"fold{k}" / "config.yaml").write_text("seed_everything: 0\n")
    (candidate / "fold2").mkdir()
    (candidate / "fold2" / "config.yaml").write_text("seed_everything: 0\n")
    pool = write_pool(tmp_path / "new", n=6)
    with pytest.raises(SystemExit) as exc:  # a fold run that was never exported
        main(["--model", str(candidate), "--images", str(pool)])
    assert exc.value.code == 2 and "fold2 were not exported" in capsys.readouterr().err
    (candidate / "fold2" / "config.yaml").unlink()
    main(["--model", str(candidate), "--images", str(pool), "--by", "vote", "--budget", "2",
          "--out", str(tmp_path / "o")])  # fmt: skip
    assert "6 unlabeled item(s), 2 model(s) by vote" in capsys.readouterr().out


def test_disagreement_needs_several_models(tmp_path, capsys):
    model = tiny_export(tmp_path / "export")
    with pytest.raises(SystemExit) as exc:
        main(
            ["--model", str(model), "--images", str(write_pool(tmp_path / "new", 3)), "--by", "kl"]
        )
    assert exc.value.code == 2 and "pass several models" in capsys.readouterr().err


@pytest.mark.slow  # trains and exports a small forest
def test_table_rows_are_ranked_by_the_table_models_probabilities(tmp_path, capsys):
    import contextlib
    import io

    from test_tables_models import learnable_table, train

    from mlcycle.export.run_export import ExportOptions, export_run

    table = learnable_table(tmp_path / "rows.csv", rows=200)
    forest = ("--model.class_path=mlcycle.tables.ClassicTabularTask",
              "--model.estimator=random_forest", "--model.params={n_estimators: 20}",
              "--trainer.max_epochs=1")  # fmt: skip
    run = train(tmp_path / "forest", table, "label", *forest)
    with contextlib.redirect_stdout(io.StringIO()):
        export_run(ExportOptions(run=str(run), format=["onnx"]))
    capsys.readouterr()
    main(["--model", str(run), "--csv", str(table), "--budget", "5", "--out", str(tmp_path / "o")])
    assert "picked 5 of 200 unlabeled item(s)" in capsys.readouterr().out
    picked = read_csv(tmp_path / "o" / "to_label.csv")
    assert all(r["path"].startswith("rows.csv row ") and "(row_id R" in r["path"] for r in picked)
    assert all(r["predicted"] in ("high", "low", "mid") for r in picked)
