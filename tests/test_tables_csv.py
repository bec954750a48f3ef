"""One's own table: the file's suffix picks its reader, configs/tables/csv_template.yaml trains
it with only the path and the target, and the run is named after the file."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcycle.core.errors import UserError
from mlcycle.tables import TabularData
from mlcycle.tables.read import source_of

TEMPLATE = Path(__file__).resolve().parents[1] / "configs" / "tables" / "csv_template.yaml"
QUICK = [
    "--trainer.max_epochs=1",
    "--trainer.accelerator=cpu",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def churn_csv(path: Path, rows: int = 80) -> Path:
    rng = np.random.default_rng(0)
    age = rng.integers(18, 80, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    churn = np.where((age < 40) | (plan == "basic"), "yes", "no")
    pd.DataFrame({"age": age, "plan": plan, "churn": churn}).to_csv(path, index=False)
    return path


def test_the_suffix_picks_the_reader_and_data_source_wins(tmp_path):
    assert source_of(None, "a/churn.csv") == "csv"
    assert source_of(None, "churn.PARQUET") == "parquet"
    assert source_of(None, "churn.pq") == "parquet"
    assert source_of(None, None, url="sqlite:///x.db") == "sql"
    assert source_of("parquet", "churn.csv") == "parquet"  # given, it wins
    assert source_of("builtin", "messy") == "builtin"
    table = churn_csv(tmp_path / "churn.csv")
    pd.read_csv(table).to_parquet(tmp_path / "churn.parquet")
    data = TabularData(path=str(tmp_path / "churn.parquet"), target="churn")
    assert data.hparams.source == "parquet" and data.run_name == "churn"
    data.setup()
    assert data.describe()["source"] == "parquet" and "file_sha256" in data.describe()
    assert TabularData(source="builtin", path="messy", target="churn").run_name is None


def test_unknown_suffix_and_a_file_given_to_builtin_are_one_line(tmp_path):
    with pytest.raises(UserError) as exc:
        TabularData(path="churn.txt", target="churn")
    text = str(exc.value)
    assert "\n" not in text and "'churn.txt'" in text and ".csv, .parquet, .pq" in text
    with pytest.raises(UserError) as exc:
        TabularData(source="builtin", path=str(tmp_path / "churn.csv"), target="churn").setup()
    assert "\n" not in str(exc.value) and "--data.source=csv" in str(exc.value)


def test_template_trains_with_path_and_target_and_names_the_run_after_the_file(
    tmp_path, monkeypatch
):
    from mlcycle.commands.train import main

    churn_csv(tmp_path / "churn.csv")
    monkeypatch.chdir(tmp_path)
    args = ["--config", str(TEMPLATE), "--data.path=churn.csv", "--data.target=churn", *QUICK]
    with contextlib.redirect_stdout(io.StringIO()):
        run = Path(main(args))
    assert run.parent == Path("runs") / "churn"
    assert (tmp_path / run / "metrics.json").is_file()
    assert "path: churn.csv" in (tmp_path / run / "config.yaml").read_text()


def test_unknown_suffix_through_train_py_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    from mlcycle.commands.train import main

    monkeypatch.chdir(tmp_path)
    args = ["--config", str(TEMPLATE), "--data.path=churn.xlsx", "--data.target=churn", *QUICK]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and ".csv, .parquet, .pq" in err[0]
    assert not (tmp_path / "runs").exists()


def test_a_data_class_on_the_command_line_gets_its_own_defaults(tmp_path, monkeypatch, capsys):
    """No config: ``--data=mlcycle.tables.TabularData`` starts from that class's defaults, not
    the built-in digits' (``source: digits`` is not carried over)."""
    import yaml

    from mlcycle.commands.train import main
    from mlcycle.training.cli import given_class

    churn_csv(tmp_path / "churn.csv")
    monkeypatch.chdir(tmp_path)
    args = ["--data=mlcycle.tables.TabularData", "--data.path=churn.csv", "--data.target=churn"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--model=mlcycle.tables.TabularTask", "--print_config"])
    assert exit_info.value.code == 0
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert data["class_path"] == "mlcycle.tables.TabularData"
    assert data["init_args"]["source"] is None and data["init_args"]["path"] == "churn.csv"
    assert given_class(["--data.class_path", "a.B"], "data") == "a.B"
    assert given_class(["--data=my_data.yaml", "--data={'class_path': 'a.B'}"], "data") is None
