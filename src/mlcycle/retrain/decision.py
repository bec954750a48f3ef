"""Promote or keep: the challenger must pass the objective gate on the holdout and beat the
champion there by the margin, on the objective's metric (the task's monitor without one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.objective import Gate, Objective, eval_gate, for_monitor, load_objective


@dataclass
class Decision:
    promote: bool
    reason: str
    metric: str  # the holdout metric compared, without split: "f1", "iou", "map"
    direction: str  # "max" or "min"
    champion: float
    challenger: float
    improvement: float  # positive: the challenger is better
    margin: float
    gate: Gate  # the challenger's, on the holdout
    champion_gate: Gate  # the champion's under the same objective, for the table

    def to_dict(self) -> dict[str, Any]:
        keys = ("promote", "reason", "metric", "direction", "champion", "challenger")
        record = {k: getattr(self, k) for k in (*keys, "improvement", "margin")}
        return {
            **record,
            "gate": self.gate.to_dict(),
            "champion_gate": self.champion_gate.to_dict(),
        }


def objective_for(run_dir: Any, monitor: tuple[str, str]) -> Objective:
    """The challenger's objective (its default metric is the task's monitor); without one, the
    monitor with no limits, so the comparison still has a metric."""
    objective = for_monitor(load_objective(run_dir), monitor[0])
    return objective or Objective(metric=monitor[0], mode=monitor[1])


def _value(result: dict[str, Any], objective: Objective, who: str) -> float:
    value = result["metrics"].get(objective.name)
    if not isinstance(value, int | float):
        known = ", ".join(k for k, v in result["metrics"].items() if isinstance(v, int | float))
        raise UserError(
            f"the {who}'s holdout metrics have no '{objective.name}' (objective.metric "
            f"{objective.metric}); they have: {known}"
        )
    return float(value)


def decide(
    objective: Objective, champion: dict[str, Any], challenger: dict[str, Any], margin: float
) -> Decision:
    """The decision on two holdout results (evaluator output: ``metrics``, ``per_class``)."""
    gate = eval_gate(objective, challenger, "test")
    champion_gate = eval_gate(objective, champion, "test")
    old, new = _value(champion, objective, "champion"), _value(challenger, objective, "challenger")
    improvement = new - old if objective.direction == "max" else old - new
    label = f"holdout {objective.name}"
    if not gate.passed:
        failed = "; ".join(c["detail"] for c in gate.failed())
        promote, reason = False, f"the challenger fails the objective on the holdout ({failed})"
    elif improvement <= 0 or improvement < margin:
        promote = False
        reason = (
            f"{label} {new:.4f} vs the champion's {old:.4f} ({improvement:+.4f}) does not beat it "
            f"by the margin {margin:g}"
        )
    else:
        promote = True
        reason = (
            f"passes the objective and beats the champion's {label} {old:.4f} by "
            f"{improvement:+.4f} (margin {margin:g})"
        )
    return Decision(
        promote,
        reason,
        objective.name,
        objective.direction,
        old,
        new,
        improvement,
        margin,
        gate,
        champion_gate,
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def table(
    decision: Decision,
    versions: tuple[int, int],
    results: tuple[dict[str, Any], dict[str, Any]],
    runs: tuple[str, str],
    holdout: str,
) -> list[str]:
    """The decision table: both models' holdout metrics side by side, gates, margin, decision."""
    champion, challenger = results
    keys = list(dict.fromkeys([*champion["metrics"], *challenger["metrics"]]))
    rows = [("", f"champion (v{versions[0]})", f"challenger (v{versions[1]})")]
    rows.append(("run", *runs))
    rows.append(("images", _cell(champion.get("images")), _cell(challenger.get("images"))))
    for key in keys:
        mark = " *" if key == decision.metric else ""
        values = (champion["metrics"].get(key), challenger["metrics"].get(key))
        rows.append((f"{key}{mark}", *(_cell(v) for v in values)))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"holdout: {holdout}"]
    lines += [f"  {r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows]
    better = "higher" if decision.direction == "max" else "lower"
    lines.append(f"  * compared metric ({better} is better)")
    lines.append(f"gate (champion):   {decision.champion_gate.line()}")
    lines.append(f"gate (challenger): {decision.gate.line()}")
    lines.append(
        f"improvement: {decision.improvement:+.4f} on {decision.metric} (margin {decision.margin:g})"
    )
    verdict = "PROMOTED the challenger" if decision.promote else "KEPT the champion"
    lines.append(f"decision: {verdict}: {decision.reason}")
    return lines
