"""compare.py --export: the comparison's one model exported in the same command, inside
--time_limit; under the limit, fold runs draw no figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_compare_budget import write_spec
from test_compare_tables import inline_figures  # noqa: F401 - fixture

from mlcycle.selection.compare.budget import Budget
from mlcycle.selection.compare.final import export_reserve


def test_export_keeps_its_share_of_the_limit():
    assert export_reserve(60.0) == 18.0 and export_reserve(30.0) == 10.0
    assert export_reserve(42.0) == 12.6
    plain, exporting = Budget(60.0, folds=3), Budget(60.0, folds=3, after=export_reserve(60.0))
    assert exporting.reserve == plain.reserve + 18.0
    exporting.ran("a", 40.0)
    exporting.start -= 40.0
    assert "kept for the report and the export" in exporting.skip_reason("b", 0)


def test_export_writes_one_model_that_predict_runs(tmp_path, capsys):
    from mlcycle.commands.compare import main
    from mlcycle.commands.predict import main as predict

    config = write_spec(tmp_path, [])
    out = tmp_path / "out"
    args = ["--config", str(config), "--out", str(out), "--preset", "fast", "--export"]
    summary = main([*args, "--time_limit", "10m"])
    printed = capsys.readouterr().out
    final = json.loads((out / "final" / "final.json").read_text())
    assert summary["final"]["model"] == final["model"] == str(out / "final/export/model.onnx")
    assert "export: " in printed and final["picked"].split(":")[0].split(" ")[0]
    names = {r["candidate"] for r in summary["rows"]}
    assert any(name in final["picked"] for name in names)
    verification = json.loads((out / "final/export/verification.json").read_text())
    assert verification["passed"] and verification["onnx"]["passed"]
    # under the time limit the fold runs drew no figures; their history is kept
    fold = out / "candidates" / summary["rows"][0]["candidate"] / "fold0"
    assert (fold / "history.csv").is_file() and not (fold / "loss_curves.png").exists()
    rows = pd.read_csv(tmp_path / "rows.csv").drop(columns=["label", "value"]).head(20)
    rows.to_csv(tmp_path / "new.csv", index=False)
    predict([final["model"], "--csv", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")])
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert len(predicted) == 20 and predicted["class"].notna().all()
    # again: the earlier final model is replaced, not refused
    main(args)
    assert json.loads((out / "final" / "final.json").read_text())["model"] == final["model"]
    assert (out / "candidates" / summary["rows"][0]["candidate"] / "fold0").is_dir()


def test_a_lone_best_candidate_is_its_fold_runs_averaged_also_through_the_api(tmp_path):
    import mlcycle

    config = write_spec(tmp_path, [{"name": "linear", "estimator": "linear"}])
    out = tmp_path / "out"
    board = mlcycle.compare(config, out=out, export=True)
    assert list(board["candidate"]) == ["linear"]
    assert (
        board.attrs["model"] == out / "final/export/model.onnx" and board.attrs["model"].is_file()
    )
    final = json.loads((out / "final" / "final.json").read_text())
    assert final["picked"] == "linear: its 2 fold runs averaged"
    record = json.loads((out / "final" / "linear" / "ensemble.json").read_text())
    assert [m["name"] for m in record["members"]] == ["linear"]
    assert np.isfinite(record["scores"]["f1"])


@pytest.mark.parametrize("bad", ["--export=maybe"])
def test_a_wrong_export_value_is_one_line(tmp_path, capsys, bad):
    from mlcycle.commands.compare import main

    config = write_spec(tmp_path, [])
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(config), "--out", str(tmp_path / "o"), bad])
    assert stop.value.code == 2 and "export" in capsys.readouterr().err


def test_a_model_that_fails_the_objective_is_not_exported(tmp_path, capsys):
    from mlcycle.commands.compare import main

    linear = {"name": "linear", "estimator": "linear"}
    config = write_spec(tmp_path, [linear], objective={"metric": "val/f1", "min": 0.9999})
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(config), "--out", str(out), "--export", "--time_limit", "10m"])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "nothing exported; the leaderboard stands" in error
    assert "mlcycle export --run" in error and "--force" in error
    assert (out / "leaderboard.json").is_file() and not (out / "final/export/model.onnx").exists()
