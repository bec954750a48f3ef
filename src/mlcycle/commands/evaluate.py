"""``mlcycle evaluate``: score a run's checkpoint on its val or test split
(:func:`mlcycle.evaluators.run_split.evaluate` does the work)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Literal

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser


def parser() -> CommandParser:
    p = CommandParser("evaluate", "Score a run's checkpoint on its val or test split.")
    p.add_argument("--run", type=str, required=True, help="run directory written by train.py")
    p.add_argument("--split", type=Literal["val", "test"], default="val")
    p.add_argument("--checkpoint", type=Literal["best", "last"], default="best")
    p.add_argument("--batch_size", type=int | None, default=None)
    p.add_argument("--tta", type=str | None, default=None, help="test-time flips instead of the run's model.tta: flip, hflip, vflip, hflip,vflip or none")  # fmt: skip
    p.add_argument("--slices", type=str | None, default=None, help="columns to evaluate by slice, e.g. camera,brightness (default: the image attributes and metadata; a table's categorical columns; none: no slices)")  # fmt: skip
    p.add_argument("--slice_margin", type=float, default=0.05, help="flag a slice below the whole by more than this")  # fmt: skip
    p.add_argument("--slice_min_samples", type=int, default=20, help="a smaller slice is reported as too small, never flagged")  # fmt: skip
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse(argv)
    from mlcycle.evaluators.run_split import evaluate, report_gate
    from mlcycle.evaluators.slice_columns import parse_names
    from mlcycle.evaluators.slices import SliceOptions

    command = shlex.join(["evaluate.py", *(sys.argv[1:] if argv is None else argv)])
    slices = SliceOptions(parse_names(args.slices), args.slice_min_samples, args.slice_margin)
    result = evaluate(
        args.run, args.split, args.checkpoint, args.batch_size, command, args.tta, slices
    )
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
