"""scripts/retrain.py: champion vs challenger on one holdout, the registry, rollback, warm start."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import run_train, train_args, write_folder

from mlcycle.run.loader import sha256

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """Old data, the same data grown (new images only added), and a champion that barely
    trained on the old data (1 epoch, tiny learning rate): a real challenger beats it."""
    base = tmp_path_factory.mktemp("retrain")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        old = write_folder(base / "old", per_class=12)
        new = write_folder(base / "new", per_class=20)
        champion = run_train(old, base / "champion", "--trainer.max_epochs=1", "--model.lr=1e-5")
    return SimpleNamespace(base=base, old=old, new=new, champion=champion)


def retrain(*args: object) -> int:
    from mlcycle.commands.retrain import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code)
    return 0


def registry_of(path: Path) -> dict:
    return json.loads(path.read_text())


def test_promote_keep_rollback(world, tmp_path, capsys):
    registry = tmp_path / "models" / "registry.json"
    good = tmp_path / "good"
    trained = train_args(world.new, good, "--trainer.max_epochs=4", "--model.lr=0.01")
    assert retrain("--champion", world.champion, "--registry", registry, *trained) == 0
    out = capsys.readouterr().out
    assert "decision: PROMOTED the challenger" in out and "champion (v1)" in out
    data = registry_of(registry)
    assert data["champion"] == 2 and data["lineage"] == [1, 2]
    first, second = data["versions"]
    assert first["decision"] == "initial" and first["run"] == str(world.champion.resolve())
    assert second["decision"] == "promoted" and second["compared_with"] == 1
    assert second["metrics"]["f1"] > second["champion_metrics"]["f1"] + 0.005
    assert second["holdout"]["images"] > 0 and second["holdout"]["excluded"] == 0
    assert second["data_fingerprint"] != first["data_fingerprint"]
    assert second["model_sha256"] == sha256(good / "export" / "model.onnx")
    assert first["model_sha256"] == sha256(world.champion / "export" / "model.onnx")
    pointer = registry.parent / "champion"
    assert pointer.read_text().strip() == str(good.resolve())
    # Both were scored on the challenger's test split: recorded once in its ledger.
    ledger = (good / "test_ledger.jsonl").read_text().splitlines()
    assert len(ledger) == 1 and json.loads(ledger[0])["command"].startswith("retrain.py")
    assert (
        json.loads((good / "eval_test.json").read_text())["images"] == second["holdout"]["images"]
    )

    bad = run_train(world.new, tmp_path / "bad", "--trainer.max_epochs=1", "--model.lr=1e-5")
    assert retrain("--challenger", bad, "--registry", registry) == 3
    assert "decision: KEPT the champion" in capsys.readouterr().out
    data = registry_of(registry)
    assert data["champion"] == 2 and data["versions"][2]["decision"] == "kept"
    assert "does not beat it by the margin" in data["versions"][2]["reason"]
    assert data["events"][-1]["event"] == "keep"
    assert pointer.read_text().strip() == str(good.resolve())
    assert retrain("--challenger", bad, "--registry", registry) == 2  # judged once only
    assert "is already v3" in capsys.readouterr().err

    assert retrain("--rollback", "--registry", registry, "--reason", "complaints") == 0
    data = registry_of(registry)
    assert data["champion"] == 1 and data["lineage"] == [1]
    assert data["events"][-1] == {**data["events"][-1], "event": "rollback", "version": 1}
    assert data["events"][-1]["reason"] == "complaints" and "rolled_back" in data["versions"][1]
    assert pointer.read_text().strip() == str(world.champion.resolve())
    capsys.readouterr()
    assert retrain("--rollback", "--registry", registry) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to roll back to" in err
    assert retrain("--list", "--registry", registry) == 0
    assert capsys.readouterr().out.startswith("* v1")


def test_warm_start_begins_at_the_champions_weights(world, tmp_path):
    from mlcycle.tasks import ClassificationTask

    registry = tmp_path / "registry.json"
    run = tmp_path / "warm"
    trained = train_args(world.new, run, "--trainer.max_epochs=1", "--model.lr=1e-5")
    assert retrain(
        "--champion", world.champion, "--registry", registry, "--warm-start", *trained
    ) in (0, 3)
    champion = torch.load(world.champion / "checkpoints/best.ckpt", weights_only=True)["state_dict"]
    network = {k.removeprefix("model."): v for k, v in champion.items() if k.startswith("model.")}
    saved = torch.load(run / "warm_start.pt", weights_only=True)
    assert saved.keys() == network.keys()
    assert all(torch.equal(saved[k], network[k]) for k in network)
    # The challenger's task, built as training built it (no checkpoint loaded), starts there.
    hparams = torch.load(run / "checkpoints/best.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["weights"] == str(run / "warm_start.pt")
    fresh = ClassificationTask(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    assert all(torch.equal(fresh.model.state_dict()[k], network[k]) for k in network)
    # ... on inputs normalized as the champion's were.
    champion_info = json.loads((world.champion / "data.json").read_text())
    assert json.loads((run / "data.json").read_text())["mean"] == champion_info["mean"]
    assert registry_of(registry)["versions"][1]["warm_start_from"] == 1


def test_seen_images_leave_the_holdout_and_a_failed_gate_keeps(world, tmp_path, capsys):
    """A challenger on the old data with another split seed: part of its test split is the
    champion's training data; those images are dropped, and its objective fails."""
    objective = '--objective={"metric": "val/f1", "min": 0.99}'
    other = run_train(
        world.old, tmp_path / "other", "--data.split_seed=7", "--model.lr=1e-5", objective
    )
    registry = tmp_path / "registry.json"
    code = retrain("--champion", world.champion, "--challenger", other, "--registry", registry)
    assert code == 3
    out = capsys.readouterr().out
    assert (
        "fails the objective on the holdout" in out
        and "dropped: a model trained or was validated on them" in out
    )
    with (other / "retrain" / "holdout.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    excluded = [r for r in rows if r["split"] == "excluded"]
    held = [r for r in rows if r["split"] == "test"]
    assert excluded and held and all("seen by the champion" in r["reason"] for r in excluded)
    with (world.champion / "data_manifest.csv").open() as fh:
        seen = {r["sha256"] for r in csv.DictReader(fh) if r["split"] in ("train", "val")}
    assert not {sha256(Path(r["path"])) for r in held} & seen
    version = registry_of(registry)["versions"][1]
    assert version["holdout"]["excluded"] == len(excluded) and version["decision"] == "kept"
    assert version["gate"]["passed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--champion", "{tmp}/nope"], "does not exist"),
        (["--challenger", "{champion}"], "has no champion yet"),
        (["--rollback"], "nothing to roll back to"),
        (
            ["--champion", "{champion}", "--challenger", "{champion}", "--holdout", "{tmp}/x"],
            "--holdout",
        ),
        (["--champion", "{champion}", "--data.root=x"], "train.py options need --config"),
        (["--champion", "{champion}", "--margin", "-1"], "--margin -1.0 must be 0 or more"),
        (["--rollback", "--champion", "{champion}"], "--rollback takes only"),
    ],
)
def test_bad_input_fails_in_one_line(world, tmp_path, capsys, args, message):
    filled = [a.format(tmp=tmp_path, champion=world.champion) for a in args]
    assert retrain(*filled, "--registry", tmp_path / "registry.json") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "registry.json").exists()


def test_a_broken_registry_is_refused(tmp_path, capsys):
    registry = tmp_path / "registry.json"
    registry.write_text("{not json")
    assert retrain("--list", "--registry", registry) == 2
    assert "cannot be read as JSON" in capsys.readouterr().err


def test_a_holdout_folder_leaves_the_challengers_test_split_sealed(world, tmp_path):
    challenger = run_train(world.new, tmp_path / "c", "--model.lr=0.01")
    fresh = write_folder(tmp_path / "fresh", per_class=24)  # images 20..23 are new to both
    registry = tmp_path / "registry.json"
    args = ("--champion", world.champion, "--challenger", challenger, "--holdout", fresh)
    assert retrain(*args, "--registry", registry, "--margin", "0") in (0, 3)
    holdout = registry_of(registry)["versions"][1]["holdout"]
    assert holdout["source"] == f"every image under {fresh}"
    assert holdout["images"] >= 3 * 4 and holdout["images"] + holdout["excluded"] == 3 * 24
    assert not (challenger / "test_ledger.jsonl").exists()
    assert not (challenger / "eval_test.json").exists()
    assert (challenger / "retrain" / "challenger" / "confusion_matrix_test.png").is_file()
    assert (challenger / "retrain" / "champion" / "confusion_matrix_test.png").is_file()


def test_a_database_registry_registers_lists_and_refuses_as_the_file_does(
    world, tmp_path, capsys, registry_url
):
    pointer = tmp_path / "champion"
    where = ("--registry", registry_url, "--pointer", pointer)
    assert retrain("--champion", world.champion, *where) == 0
    assert pointer.read_text().strip() == str(world.champion.resolve())
    assert retrain("--challenger", world.champion, *where) == 2  # the champion itself
    assert "is the champion itself" in capsys.readouterr().err
    assert retrain("--rollback", *where) == 2
    assert "nothing to roll back to in registry" in capsys.readouterr().err
    assert retrain("--list", *where) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and listed[0].startswith("* v1") and "initial" in listed[0]
