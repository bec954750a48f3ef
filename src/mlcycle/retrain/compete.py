"""One retraining cycle: score champion and challenger on the holdout, decide, register.

The challenger becomes a new registry version whatever the decision; on promotion it is
exported (ONNX, verified) before the champion pointer moves to it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.core.objective import eval_gate, parse_objective, run_monitor
from mlcycle.core.record import write_json
from mlcycle.evaluators.ledger import record_test_use
from mlcycle.retrain.decision import Decision, decide, objective_for, table
from mlcycle.retrain.deploy import ensure_exported
from mlcycle.retrain.holdout import Holdout, build_holdout, score
from mlcycle.retrain.registry import Registry, now
from mlcycle.run import tracking
from mlcycle.run.loader import Run

KEPT = 3  # the exit code when the champion stays


def fingerprint(run: Run) -> str | None:
    metrics = run.path / "metrics.json"
    recorded = (
        json.loads(metrics.read_text()).get("data_fingerprint") if metrics.is_file() else None
    )
    return recorded or run.data_info.get("fingerprint")


def _record_test(challenger: Run, holdout: Holdout, result: dict[str, Any], command: str) -> None:
    """The holdout is the challenger's test split: write its eval_test.json and ledger entry,
    as evaluate.py --split test would (this is the split's reading)."""
    record = {**result, "split": "test", "holdout": holdout.describe(), "command": command}
    objective = parse_objective(challenger.config.get("objective"))
    if objective is not None:
        record["gate"] = eval_gate(objective, result, "test").to_dict()
    record["time"] = now()
    before = record_test_use(challenger.path, result["metrics"], command)
    record["test_evaluations_before"] = before
    write_json(challenger.path / "eval_test.json", record)
    if before:
        print(
            f"warning: the challenger's test split has now been read {before + 1} times; "
            "its score stops estimating generalization",
            file=sys.stderr,
        )


def compete(
    registry: Registry, champ: tuple[dict[str, Any], Run], challenger: Run, args: Any, command: str
) -> dict[str, Any]:
    """Score both on the holdout, decide, register the challenger, promote it or keep."""
    entry, champion = champ
    if challenger.path.resolve() == champion.path.resolve():
        raise UserError(f"the challenger '{challenger.path}' is the champion itself")
    known = registry.find_run(challenger.path)
    if known is not None:  # judging it again would read its test split again
        raise UserError(
            f"run '{challenger.path}' is already v{known['version']} in registry "
            f"'{registry.path}' ({known.get('decision')}); train a new challenger"
        )
    out = challenger.path / "retrain"
    holdout = build_holdout(challenger, champion, args.holdout, out)
    results = (
        score(champion, holdout, out / "champion"),
        score(
            challenger, holdout, challenger.path if holdout.own_test_split else out / "challenger"
        ),
    )
    if holdout.own_test_split:
        _record_test(challenger, holdout, results[1], command)
    task_cls = import_object(challenger.config["model"]["class_path"], "task class")
    monitor = run_monitor(challenger.path, task_cls)  # the run's own (regression: val/rmse)
    decision = decide(objective_for(challenger.path, monitor), *results, args.margin)
    exported: dict[str, Any] = {"onnx": None, "model_sha256": None}
    if decision.promote:
        try:
            exported = ensure_exported(challenger)
        except UserError as exc:  # a failed verification: never serve it
            decision.promote, decision.reason = False, f"export.py failed: {exc}"
    version = _register(registry, entry, challenger, holdout, results, decision, args, exported)
    versions = (entry["version"], version["version"])
    lines = table(decision, versions, results, (entry["run"], version["run"]), holdout.line())
    write_json(
        out / "decision.json",
        {
            "version": version,
            "decision": decision.to_dict(),
            "holdout": holdout.describe(),
            "champion": results[0],
            "challenger": results[1],
        },
    )
    print("\n".join(lines))
    champion_now = registry.champion
    print(f"registry: {registry.path} (champion v{champion_now['version']}: {champion_now['run']})")
    if not decision.promote:
        sys.stdout.flush()
        raise SystemExit(KEPT)
    print(f"champion pointer: {registry.pointer()} -> {version['run']}")
    return {"version": version, "decision": decision.to_dict(), "registry": registry.path}


def _register(
    registry: Registry,
    champion: dict[str, Any],
    challenger: Run,
    holdout: Holdout,
    results: tuple[dict[str, Any], dict[str, Any]],
    decision: Decision,
    args: Any,
    exported: dict[str, Any],
) -> dict[str, Any]:
    """Add the challenger as a version with its decision; promote it or record the keep."""
    version = registry.add_version(
        challenger.path,
        data_fingerprint=fingerprint(challenger),
        checkpoint_sha256=results[1]["checkpoint_sha256"],
        holdout=holdout.describe(),
        metric=decision.metric,
        metrics=results[1]["metrics"],
        champion_metrics=results[0]["metrics"],
        compared_with=champion["version"],
        gate=decision.gate.to_dict(),
        margin=decision.margin,
        improvement=round(decision.improvement, 6),
        decision="promoted" if decision.promote else "kept",
        reason=decision.reason,
        warm_start_from=champion["version"] if args.warm_start else None,
        **exported,
    )
    if decision.promote:
        registry.promote(version["version"], decision.reason)
    else:
        registry.event(
            "keep", version=version["version"], champion=champion["version"], reason=decision.reason
        )
    registry.save()
    if decision.promote:
        registry.write_pointer()
    # MLflow: the model version's alias (a challenger never exported has no version to name)
    tracking.mark(challenger.path, "champion" if decision.promote else "challenger")
    return version
