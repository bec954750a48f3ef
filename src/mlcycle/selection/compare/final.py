"""compare.py ``--export``: the comparison's one model, exported, in the same command.

After the leaderboard, the shortlist is combined by every ensemble method (soft, weighted,
stacking; each scored cross-fitted on the out-of-fold predictions, ``mlcycle ensemble
--method all``). The ensemble is kept when its out-of-fold score beats the best single
member's; otherwise the best candidate's fold runs are averaged (a bag: every row of the data
trained one of them). A task without an ensemble kind exports the best candidate's best fold
run. The pick is exported by ``export.py``'s own code (ONNX, verified against eager) to
``<out>/final/export``; ``final/final.json`` says what was picked and why. Nothing here knows a task.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from mlcycle.core.errors import UserError
from mlcycle.core.record import write_json
from mlcycle.selection.ensemble.kinds import ENSEMBLES, Request, ensemble, members_task
from mlcycle.selection.ensemble.members import read_shortlist

EXPORT_SHARE = 0.3  # of --time_limit kept for the ensemble, the export and the exit
# measured on a small table, 2 cores: the ensemble 3 s, the export with its checks 6-9 s, and
# the report often 2 s past its own share
EXPORT_MIN_S = 12.0


def export_reserve(seconds: float) -> float:
    """Seconds of a ``seconds`` limit kept for ``--export`` after the report."""
    return min(seconds / 3, max(EXPORT_MIN_S, EXPORT_SHARE * seconds))


def _board(out: Path) -> dict[str, Any]:
    board = json.loads((out / "leaderboard.json").read_text())
    rows = [r for r in board["rows"] if r.get("kind", "candidate") == "candidate"]
    if not rows:
        raise UserError(f"'{out}' ranks no candidate: nothing to export")
    return {**board, "rows": rows}


def _better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


def _score(scores: dict[str, Any], metric: str) -> float | None:
    value = scores.get(metric.split("/")[-1])
    return None if value is None else float(value)


def _fold_runs(out: Path, row: dict[str, Any]) -> list[Path]:
    """A candidate's fold runs (none for a classic model on pixels or embeddings)."""
    folder = out / "candidates" / row["candidate"]
    folds = [folder / f"fold{i}" for i in range(len(row["folds"]))]
    return folds if all((f / "config.yaml").is_file() for f in folds) else []


def _shortlist_ensemble(out: Path, board: dict, command: str) -> tuple[Path, str] | None:
    """The shortlist's best ensemble when it beats its best single member out of fold."""
    shortlist = out / "shortlist.yaml"
    if not shortlist.is_file() or len(read_shortlist(shortlist)["members"]) < 2:
        return None
    try:
        run = ensemble(Request(None, shortlist, "all", str(out / "final" / "ensemble"), command))
    except UserError as exc:  # e.g. members without runs, a task without an ensemble kind
        print(f"export: no shortlist ensemble ({exc})")
        return None
    record = json.loads((run / "ensemble.json").read_text())
    whole = _score(record["scores"], board["metric"])
    singles = [_score(m.get("scores", {}), board["metric"]) for m in record["members"]]
    singles = [s for s in singles if s is not None]
    if whole is None or not singles:
        return None
    best = max(singles) if board["mode"] == "max" else min(singles)
    if not _better(whole, best, board["mode"]):
        print(f"export: the {record['method']} ensemble ({whole:.4f}) does not beat its best "
              f"member ({best:.4f}) out of fold")  # fmt: skip
        return None
    names = "+".join(m["name"] for m in record["members"])
    return run, f"{record['method']} ensemble of {names} (out of fold {whole:.4f} vs {best:.4f})"


def _best_bag(out: Path, board: dict, command: str) -> tuple[Path, str]:
    """The best candidate's fold runs averaged, or its best fold run where the task has no
    ensemble kind."""
    exportable = [(r, _fold_runs(out, r)) for r in board["rows"]]
    exportable = [(r, f) for r, f in exportable if f]
    if not exportable:
        raise UserError(
            f"no ranked candidate of '{out}' is a train.py run (classic models on pixels or "
            "embeddings are not exported); add a deep candidate, or export a run with export.py"
        )
    best, folds = exportable[0]
    name = best["candidate"]
    if best is not board["rows"][0]:
        print(f"export: {board['rows'][0]['candidate']} has no run to export (a classic model on "
              f"pixels or embeddings); {name} is the best candidate with runs")  # fmt: skip
    listed = out / "shortlist.yaml"
    members = read_shortlist(listed)["members"] if listed.is_file() else []
    entry = next((m for m in members if isinstance(m, dict) and m.get("name") == name), {})
    oof = out / "candidates" / name / "oof.npz"
    entry = {
        "family": best.get("family"),
        **entry,
        "name": name,
        "runs": [str(f) for f in folds],
        "oof": str(oof),
    }
    bag = out / "best.yaml"  # a shortlist of one, beside shortlist.yaml (its folds are there)
    bag.write_text(yaml.safe_dump({"comparison": str(out), "members": [entry]}, sort_keys=False))
    request = Request(None, bag, "soft", str(out / "final" / name), command)
    if members_task(request)[1] in ENSEMBLES:
        return ensemble(request), f"{name}: its {len(folds)} fold runs averaged"
    scores = best["folds"]
    pick = scores.index(max(scores) if best["mode"] == "max" else min(scores))
    return folds[pick], f"{name}: its best fold run (fold {pick})"


def export_final(out: Path, command: str) -> dict[str, Any]:
    """Pick the comparison's model, export it to ``out/final/export``; ``final.json``."""
    from mlcycle.export.run_export import ExportOptions, export_run

    clock = time.perf_counter()
    board = _board(out)
    shutil.rmtree(out / "final", ignore_errors=True)  # compare's own output of an earlier run
    chosen = _shortlist_ensemble(out, board, command) or _best_bag(out, board, command)
    run, why = chosen
    print(f"export: {why}")
    target = out / "final" / "export"
    try:
        report = export_run(ExportOptions(run=str(run), format=["onnx"], out=str(target)))
    except UserError as exc:
        if "--force" not in str(exc):
            raise
        raise UserError(
            f"{str(exc).split('; retrain')[0]}: nothing exported; the leaderboard stands. Export "
            f"it anyway: mlcycle export --run {run} --force"
        ) from exc
    record = {
        "run": str(run),
        "picked": why,
        "model": str(target / "model.onnx"),
        "seconds": round(time.perf_counter() - clock, 2),
    }
    write_json(out / "final" / "final.json", record)
    return {**record, "export": report}
