"""``mlcycle label-next``: which unlabeled images (or rows) to label next.

    mlcycle label-next --model RUN --images data/unlabeled --budget 50
    mlcycle label-next --model compare/candidates/small_cnn --images data/unlabeled --by kl
    mlcycle label-next --db sqlite:///serve/predictions.db --since 2024-05-01 --model RUN
    mlcycle label-next --labeled label_next/to_label.csv --db URL --manifest data/labels.csv

Ranks the pool by how unsure the model is (margin, entropy, least confidence) or how much
several models disagree (vote entropy, mean KL), spreads the picks by greedy k-center over
the embeddings, writes OUT/to_label.csv and OUT/to_label.html. ``--labeled`` brings a filled
to_label.csv back: feedback in the store, rows of a manifest. See docs/data_centric.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError

By = Literal["auto", "margin", "entropy", "least", "vote", "kl"]


def parser() -> CommandParser:
    p = CommandParser("label-next", "Pick the unlabeled images or rows to label next.")
    p.add_repeatable("model", "An exported model: model.onnx, its export folder, a run, or a folder of exported runs (fold runs, ensemble members); repeat for several.")  # fmt: skip
    p.add_repeatable("images", "An image file or a folder of them (recursively): the pool.")
    p.add_repeatable("csv", "A table model's pool: a CSV file of unlabeled rows.")
    p.add_argument("--db", type=str | None, default=None, help="The prediction store (SQLAlchemy URL): its rows without feedback are the pool; with --labeled, where feedback goes.")  # fmt: skip
    p.add_argument("--since", type=str | None, default=None, help="With --db: rows from this ISO date or time (UTC unless an offset is given).")  # fmt: skip
    p.add_argument("--until", type=str | None, default=None, help="With --db: rows before this ISO date or time.")  # fmt: skip
    p.add_argument("--by", type=By, default="auto", help="margin, entropy, least (confidence), vote (entropy) or kl (mean KL of members); auto: kl for several models, else margin.")  # fmt: skip
    p.add_argument("--budget", type=int, default=20, help="How many to pick.")
    p.add_argument("--spread", type=bool, default=True, help="Spread the picks by greedy k-center over the embeddings (false: the most uncertain alone).")  # fmt: skip
    p.add_argument("--candidates", type=int | None, default=None, help="How many of the most uncertain k-center chooses among (default: 5 x budget).")  # fmt: skip
    p.add_argument("--out", type=str, default="label_next", help="Output folder for to_label.csv and to_label.html.")  # fmt: skip
    p.add_argument("--labeled", type=str | None, default=None, help="A filled to_label.csv to bring back (feedback with --db, manifest rows with --manifest).")  # fmt: skip
    p.add_argument("--manifest", type=str | None, default=None, help="With --labeled: the path,label manifest the labeled files go into (created when missing).")  # fmt: skip
    return p


def build_pool(args: Any, members: list[Any]) -> Any:
    from mlcycle.monitor.windows import parse_time
    from mlcycle.selection.label_next import pool

    given = [name for name in ("images", "csv", "db") if getattr(args, name)]
    if len(given) != 1:
        raise UserError("pass one pool: --images FOLDER, --csv ROWS.csv or --db URL")
    if args.db:
        names = members[0].class_names if members else None
        since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
        return pool.store_pool(args.db, since, until, names, None)
    if not members:
        raise UserError("pass --model RUN (or RUN/export/model.onnx) to score the pool")
    if args.csv:
        return pool.rows_pool(members, args.csv)
    if members[0].input_kind != "image":
        raise UserError(f"'{members[0].path}' reads {members[0].input_kind} rows: pass --csv")
    return pool.images_pool(members, args.images)


def bring_back(args: Any) -> list[str]:
    """``--labeled``: the filled to_label.csv into the store and the manifest."""
    from mlcycle.selection.label_next.feedback import import_labels
    from mlcycle.selection.label_next.members import load_members

    names = load_members(args.model)[0].class_names if args.model else None
    manifest = Path(args.manifest) if args.manifest else None
    return import_labels(Path(args.labeled), args.db, manifest, names)


def choose_by(by: str, n_members: int) -> str:
    from mlcycle.selection.label_next.scores import DISAGREEMENT, default_by

    if by == "auto":
        return default_by(n_members)
    if by in DISAGREEMENT and n_members < 2:
        raise UserError(f"--by {by} measures disagreement: pass several models (--model A --model B, or a folder of fold runs)")  # fmt: skip
    return by


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse(argv)
    if args.labeled:
        for line in bring_back(args):
            print(line)
        return {"labeled": args.labeled}
    from mlcycle.selection.label_next.members import load_members
    from mlcycle.selection.label_next.output import write_outputs
    from mlcycle.selection.label_next.pick import CANDIDATES_PER_PICK, choose

    if args.budget < 1:
        raise UserError(f"--budget must be at least 1 (got {args.budget})")
    members = load_members(args.model) if args.model else []
    pool = build_pool(args, members)
    by = choose_by(args.by, len(pool.members))
    if pool.skipped:
        named = ", ".join(f"{name} ({why})" for name, why in pool.skipped[:5])
        more = f" and {len(pool.skipped) - 5} more" if len(pool.skipped) > 5 else ""
        print(f"skipped {len(pool.skipped)} unreadable item(s): {named}{more}")
    budget = args.budget
    if budget > len(pool.names):
        print(f"--budget {budget} is more than the {len(pool.names)} unlabeled item(s); picking all {len(pool.names)}")  # fmt: skip
        budget = len(pool.names)
    candidates = args.candidates or CANDIDATES_PER_PICK * budget
    picks = choose(pool, by, budget, args.spread, candidates)
    source = f"{len(pool.names)} unlabeled item(s), {len(pool.members)} model(s)"
    table, page = write_outputs(
        pool, picks, Path(args.out), source=source, by=by, spread=args.spread,
        candidates=min(candidates, len(pool.names)), notes=[],
    )  # fmt: skip
    print(f"picked {len(picks)} of {source} by {by}; embeddings: {pool.embedding_kind}")
    print(f"wrote {table} and {page}; fill its label column, then: mlcycle label-next --labeled {table}")  # fmt: skip
    return {"picks": [pool.names[p.index] for p in picks], "csv": str(table), "html": str(page)}
