"""``scripts/evaluate.py``: score a run's checkpoint on its val or test split."""

from __future__ import annotations

import csv
import hashlib
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError
from mlcycle.core.objective import eval_gate, parse_objective
from mlcycle.core.record import write_json
from mlcycle.evaluators import evaluator_for
from mlcycle.run.loader import Run, sha256

LEDGER = "test_ledger.jsonl"


class GateFailed(UserError):
    """The run misses its objective on the test split (eval_test.json is written)."""

    exit_code = 3


def hash_of_test_split(run_dir: Path) -> str | None:
    """sha256 over the sorted content hashes of the run's test files (from data_manifest.csv)."""
    manifest = run_dir / "data_manifest.csv"
    if not manifest.is_file():
        return None
    with manifest.open(newline="") as fh:
        hashes = sorted(row["sha256"] for row in csv.DictReader(fh) if row.get("split") == "test")
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def record_test_use(run_dir: Path, metrics: dict[str, Any], command: str | None = None) -> int:
    """Append this test evaluation to the ledger; return how many came before it."""
    ledger = run_dir / LEDGER
    before = len(ledger.read_text().splitlines()) if ledger.is_file() else 0
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "test_split_sha256": hash_of_test_split(run_dir),
        "metrics": metrics,
    }
    with ledger.open("a") as fh:
        fh.write(json.dumps(entry) + "\n")
    return before


def evaluate(
    run_dir: str | Path,
    split: str = "val",
    which: str = "best",
    batch_size: int | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Score checkpoint ``which`` on ``split``; write ``eval_<split>.json`` and the figures."""
    run = Run(run_dir)
    checkpoint = run.checkpoint(which)
    model = run.load_model(which)
    evaluator = evaluator_for(model)
    overrides = {"batch_size": batch_size} if batch_size else {}
    data = run.load_data(num_workers=0, **overrides)
    result: dict[str, Any] = {"split": split, "checkpoint": str(checkpoint.relative_to(run.path))}
    result["checkpoint_sha256"] = sha256(checkpoint)
    result.update(evaluator(model, data, split, run.path))
    objective = parse_objective(run.config.get("objective"))
    if objective is not None:
        result["gate"] = eval_gate(objective, result, split).to_dict()
    result["time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if split == "test":
        result["test_evaluations_before"] = record_test_use(run.path, result["metrics"], command)
    write_json(
        run.path / f"eval_{split}.json", {k: v for k, v in result.items() if k != "report_lines"}
    )
    return result


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = ArgParser(
        prog="evaluate.py", description="Score a run's checkpoint on its val or test split."
    )
    parser.add_argument("--run", required=True, help="run directory written by train.py")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    command = shlex.join(["evaluate.py", *(sys.argv[1:] if argv is None else argv)])
    result = evaluate(args.run, args.split, args.checkpoint, args.batch_size, command)
    if args.split == "test" and result["test_evaluations_before"]:
        n = result["test_evaluations_before"] + 1
        print(
            f"warning: the test split of this run has now been evaluated {n} times; choosing models or "
            "settings by it turns it into a validation set, and its score stops estimating generalization",
            file=sys.stderr,
        )
    metrics = "  ".join(
        f"{k} {v:.4f}" for k, v in result["metrics"].items() if isinstance(v, float)
    )
    count = f"{result['rows']} rows" if "rows" in result else f"{result['images']} images"
    print(f"{args.split}: {count}  {metrics}")
    for line in result.get("report_lines", []):
        print(line)
    print(f"wrote {Path(args.run) / f'eval_{args.split}.json'}")
    report_gate(result.get("gate"), args.split)
    return result


def report_gate(gate: dict[str, Any] | None, split: str) -> None:
    """Print the objective's line; on the test split a failed gate is exit code 3."""
    if gate is None:
        return
    if split == "test" and not gate["passed"]:
        raise GateFailed(gate["line"])
    print(gate["line"])
