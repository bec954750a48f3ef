"""compare.py --time_limit and --preset: the budget skips what does not fit and says so, the
leaderboard ranks the candidates that finished, and a preset expands to its candidates."""

from __future__ import annotations

import json

import pytest
import yaml
from test_compare_tables import FAST, base_config, inline_figures  # noqa: F401 - fixture
from test_tables_models import learnable_table

from mlcycle.core.errors import UserError
from mlcycle.selection.compare.budget import Budget, parse_duration
from mlcycle.selection.compare.spec import add_preset, load_spec
from mlcycle.tables.selection.presets import TABLE_PRESETS


def test_durations_read_as_people_write_them():
    assert parse_duration("600") == 600 and parse_duration(600) == 600
    assert parse_duration("10m") == 600 and parse_duration("1h") == 3600
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    assert parse_duration(None) is None
    for bad in ("ten minutes", "10x", "0", ""):
        with pytest.raises(UserError, match="--time_limit"):
            parse_duration(bad)


def test_a_candidate_that_cannot_finish_gives_its_time_to_the_next():
    budget = Budget(20.0, folds=3)  # 3 s of it kept for the report
    assert budget.skip_reason("slow", 0) is None
    budget.ran("slow", 6.0)
    budget.start -= 6.0  # 11 of the 17 seconds for fits left: its 2 other folds need about 12
    reason = budget.skip_reason("slow", 1)
    assert reason and "2 remaining fold(s)" in reason
    assert budget.skip_reason("slow", 2) == reason  # the rest of its folds too
    assert budget.skip_reason("quick", 0) is None  # the next candidate still starts
    budget.start -= 12.0
    assert "time limit (20s) was reached" in budget.skip_reason("quick", 0)
    assert Budget(None, folds=3).skip_reason("any", 0) is None


def write_spec(folder, candidates, **keys):
    table = learnable_table(folder / "rows.csv", rows=120)
    spec = {"train": [str(base_config(folder, table, "label"))], "args": FAST, "folds": 2}
    path = folder / "cmp.yaml"
    path.write_text(yaml.safe_dump({**spec, "candidates": candidates, **keys}))
    return path


def test_a_preset_adds_its_candidates_and_the_yaml_wins_by_name(tmp_path):
    mine = {"name": "linear", "estimator": "linear", "params": {"C": 0.1}}
    spec = load_spec(write_spec(tmp_path, [mine], preset="medium", time_limit="10m"))
    assert spec.time_limit == 600
    add_preset(spec, TABLE_PRESETS, "row")
    names = [c.name for c in spec.candidates]
    assert names == ["linear", *[e["name"] for e in TABLE_PRESETS["medium"][1:]]]
    assert spec.candidates[0].params == {"C": 0.1}  # the YAML's linear, not the preset's
    assert {"mlp", "random_forest", "extra_trees"} <= set(names)
    assert {"catboost", "hist_gradient_boosting"} & set(names)  # CatBoost where installed
    spec.preset = "huge"
    with pytest.raises(UserError, match="--preset 'huge': row comparisons offer fast, medium"):
        add_preset(spec, TABLE_PRESETS, "row")


def test_a_time_limit_ranks_the_finished_and_lists_the_skipped(tmp_path, capsys):
    from mlcycle.commands.compare import main

    config = write_spec(tmp_path, [])
    out = tmp_path / "out"
    args = ["--config", str(config), "--out", str(out), "--preset", "fast"]
    main([*args, "--only", "decision_tree"])  # its folds finish and are kept
    capsys.readouterr()
    summary = main([*args, "--time_limit", "0.001s"])  # the others have no time left
    printed = capsys.readouterr().out
    assert [r["candidate"] for r in summary["rows"]] == ["decision_tree"]
    assert summary["rows"][0]["mean"] is not None
    skipped = {s["candidate"]: s for s in summary["skipped"]}
    assert set(skipped) == {"linear", "hist_gradient_boosting"}
    assert skipped["linear"]["folds_skipped"] == [0, 1] and skipped["linear"]["folds_kept"] == []
    assert "time limit (0s) was reached" in skipped["linear"]["reason"]
    assert "skipped linear fold(s) [0, 1]" in printed
    saved = json.loads((out / "leaderboard.json").read_text())
    assert saved["skipped"] == summary["skipped"] and saved["time_limit_s"] == 0.001
    assert "Skipped linear" in (out / "leaderboard.md").read_text()
    assert not (out / "candidates" / "linear" / "fold0" / "selection_fold.json").exists()


def test_quick_classic_candidates_run_before_the_deep_ones():
    """Under a budget the classic candidates of their own features go first, the deep ones
    next, and the classic ones on a deep candidate's embeddings last (they need its folds)."""
    from mlcycle.selection.compare.run import order
    from mlcycle.selection.compare.spec import Candidate

    cands = [
        Candidate("mlp", "deep"),
        Candidate("on_mlp", "classic", features="embeddings:mlp"),
        Candidate("linear", "classic"),
        Candidate("cnn", "deep"),
        Candidate("probe", "classic", features="backbone:resnet18"),
    ]
    assert [c.name for c in order(cands)] == ["linear", "probe", "mlp", "cnn", "on_mlp"]


def test_the_budget_keeps_a_share_for_the_report_and_expects_a_first_fold():
    budget = Budget(20.0, folds=2)
    assert budget.reserve == 3.0 and Budget(100.0, folds=2).reserve == 15.0
    assert budget.left() == pytest.approx(17.0, abs=0.5)  # the report's share is not for fits
    budget.ran("quick", 5.0)
    budget.start -= 13.0  # 4 s left for fits: a new candidate's first fold takes about 5
    reason = budget.skip_reason("next", 0)
    assert reason and "its first fold takes about 5s" in reason and "kept for the report" in reason


@pytest.mark.slow
def test_a_tight_time_limit_holds_the_whole_command(tmp_path, capsys):
    """compare.py with the medium preset on a small table and 12 s: the fits, the report and
    its figures end within the limit and a few seconds (a fit that started runs to its end;
    the first one in this process also pays train.py's imports)."""
    import time

    from mlcycle.commands.compare import main

    config = write_spec(tmp_path, [])
    args = ["--config", str(config), "--out", str(tmp_path / "out"), "--preset", "medium"]
    main([*args, "--only", "linear"])  # train.py's imports paid here, linear's folds kept
    limit = 12.0
    began = time.monotonic()
    summary = main([*args, "--time_limit", str(limit)])
    took = time.monotonic() - began
    assert took < limit + 8.0, f"compare took {took:.1f}s for a {limit:.0f}s limit"
    assert summary["rows"][0]["candidate"] and summary["time_limit_s"] == limit
    ran = len(summary["rows"]) + len(summary["skipped"])
    assert ran == len(TABLE_PRESETS["medium"])  # each ranked or listed as skipped, with why
