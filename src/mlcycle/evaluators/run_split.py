"""Score a run's checkpoint on its val or test split with the task's evaluator; what
``evaluate.py`` (:mod:`mlcycle.commands.evaluate`) runs."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.objective import eval_gate, parse_objective
from mlcycle.core.record import write_json
from mlcycle.evaluators import evaluator_for
from mlcycle.evaluators.baselines import add_baselines
from mlcycle.evaluators.ledger import record_test_use
from mlcycle.evaluators.outputs import kept_outputs
from mlcycle.evaluators.slice_run import run_slices, slice_names
from mlcycle.evaluators.slices import SliceOptions
from mlcycle.run.loader import Run, sha256
from mlcycle.tasks.tta import set_tta, tta_of


class GateFailed(UserError):
    """The run misses its objective on the test split (eval_test.json is written)."""

    exit_code = 3


def evaluate(
    run_dir: str | Path,
    split: str = "val",
    which: str = "best",
    batch_size: int | None = None,
    command: str | None = None,
    tta: str | None = None,
    slices: SliceOptions | None = None,
) -> dict[str, Any]:
    """Score checkpoint ``which`` on ``split``; write ``eval_<split>.json`` and the figures.
    ``tta``: flips to average over instead of the run's ``model.tta`` (``none``: without);
    ``slices``: evaluation by slice (default: the kind of data's columns)."""
    run = Run(run_dir)
    checkpoint = run.checkpoint(which)
    model = run.load_model(which)
    set_tta(model, tta)
    evaluator = evaluator_for(model)
    overrides = {"batch_size": batch_size} if batch_size else {}
    data = run.load_data(num_workers=0, **overrides)
    slices = slices or SliceOptions()
    names = slice_names(data, slices)  # an unknown column stops here, before predicting
    result: dict[str, Any] = {"split": split, "checkpoint": str(checkpoint.relative_to(run.path))}
    result["checkpoint_sha256"] = sha256(checkpoint)
    result["tta"] = tta_of(model)  # the flips predict_step averaged over, or null
    with kept_outputs() as outputs:
        result.update(evaluator(model, data, split, run.path))
    add_baselines(result, model, data, split)  # the task's dummy baselines on the same split
    objective = parse_objective(run.config.get("objective"))
    if objective is not None:
        result["gate"] = eval_gate(objective, result, split).to_dict()
    found = run_slices(run, model, data, outputs, names, objective, slices, split)
    result["report_lines"] = [*result.get("report_lines", []), *found.pop("report_lines", [])]
    result.update(found)
    result["time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if split == "test":
        result["test_evaluations_before"] = record_test_use(run.path, result["metrics"], command)
    write_json(
        run.path / f"eval_{split}.json", {k: v for k, v in result.items() if k != "report_lines"}
    )
    return result


def report_gate(gate: dict[str, Any] | None, split: str) -> None:
    """Print the objective's line; on the test split a failed gate is exit code 3."""
    if gate is None:
        return
    if split == "test" and not gate["passed"]:
        raise GateFailed(gate["line"])
    print(gate["line"])
