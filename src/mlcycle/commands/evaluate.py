"""``evaluate.py``: score a run's checkpoint on its val or test split
(:func:`mlcycle.evaluators.run_split.evaluate` does the work)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.evaluators.run_split import evaluate, report_gate


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
