"""The exported models that score the pool: ``--model`` names a model file, an export folder
(model.json beside model.onnx), a run (its ``export/``) or a folder of exported runs (compare's
``candidates/<name>/`` with its ``fold<k>/`` runs, an ensemble's members). Each is loaded
through ``mlcycle.edge`` as predict.py loads it; an ONNX image model also gives the input of
its last linear layer (the penultimate output) as the item's embedding when its graph has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.edge.form import softmax
from mlcycle.edge.model import UsageError, load_model, read_meta

MODEL_FILES = ("model.onnx", "model.ts")
FORMS = ("classes", "table")  # output forms whose answers are class probabilities
# nodes that pass the last linear layer's result on unchanged in kind (its bias, a reshape)
PASS_THROUGH = ("Add", "Identity", "Reshape", "Flatten", "Squeeze")


@dataclass
class Member:
    """One exported model: its file, model.json, and a function from an input batch to
    its probabilities [N, C] and embeddings [N, D] (None when the graph offers none)."""

    path: Path
    meta: dict[str, Any]
    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]

    @property
    def class_names(self) -> list[str]:
        return [str(n) for n in self.meta.get("class_names") or []]

    @property
    def input_kind(self) -> str:
        return str(self.meta["input"].get("kind") or "image")


def exported_in(folder: Path) -> Path | None:
    """The model file of an export folder or of a run's ``export/``, if there is one."""
    for base in (folder, folder / "export"):
        if (base / "model.json").is_file():
            for name in MODEL_FILES:
                if (base / name).is_file():
                    return base / name
    return None


def resolve(given: str) -> list[Path]:
    """The model files ``--model`` names (several for a folder of exported runs)."""
    path = Path(given).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"--model '{given}' does not exist; pass RUN/export/model.onnx or a run")
    found = exported_in(path)
    if found is not None:
        return [found]
    runs = sorted(p for p in path.iterdir() if p.is_dir() and (p / "config.yaml").is_file())
    exported = [m for m in (exported_in(r) for r in runs) if m is not None]
    if runs and len(exported) < len(runs):
        missing = [r.name for r in runs if exported_in(r) is None]
        raise UserError(
            f"--model '{given}': run(s) {', '.join(missing)} were not exported; "
            f"export each first: python scripts/export.py --run {path / missing[0]}"
        )
    if not exported:
        raise UserError(
            f"--model '{given}' holds no exported model (model.json beside model.onnx), run "
            "with export/, or exported runs; export it first: python scripts/export.py --run DIR"
        )
    return exported


def probabilities(outputs: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """The graph's first output as probabilities (softmax of logits unless already applied)."""
    output = meta.get("output") or {}
    values = np.asarray(outputs, dtype=np.float64)
    if output.get("kind") == "table" or output.get("softmax_applied"):
        return values
    return softmax(values)


def penultimate(path: Path) -> tuple[Any, str] | None:
    """An ONNX Runtime session of ``path`` that also returns the input of the linear layer
    (Gemm or MatMul) the first output comes from, and that tensor's name; None when the graph
    ends otherwise (test-time flips average softmaxes), or the onnx package is missing."""
    try:
        import onnx
    except ImportError:
        return None
    import onnxruntime as ort

    model = onnx.load(str(path))
    producers = {out: node for node in model.graph.node for out in node.output}
    constants = {i.name for i in model.graph.initializer}
    name = model.graph.output[0].name
    for _ in range(len(PASS_THROUGH) + 2):
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type in ("Gemm", "MatMul"):
            found = node.input[0]
            if found in constants:
                return None
            model.graph.output.append(onnx.ValueInfoProto(name=found))
            options = ort.SessionOptions()
            session = ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            return session, found
        if node.op_type not in PASS_THROUGH:
            return None
        name = next((i for i in node.input if i not in constants), "")
    return None


def load_member(path: Path) -> Member:
    """One model file with its model.json; a form without class probabilities is one line."""
    try:
        meta = read_meta(path)
    except UsageError as exc:
        raise UserError(str(exc)) from exc
    kind = (meta.get("output") or {}).get("kind")
    if kind not in FORMS or not meta.get("class_names"):
        raise UserError(
            f"'{path}' answers '{kind}'; label-next ranks class probabilities "
            "(a classifier's export: output kind classes or table)"
        )
    found = penultimate(path) if path.suffix == ".onnx" and kind == "classes" else None
    if found is not None:
        session, embedding = found
        first = session.get_outputs()[0].name
        feed = session.get_inputs()[0].name

        def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            logits, features = session.run([first, embedding], {feed: x})
            return probabilities(logits, meta), np.asarray(features).reshape(len(x), -1)

        return Member(path, meta, predict)
    try:
        model = load_model(path) if kind == "classes" else None
    except UsageError as exc:
        raise UserError(str(exc)) from exc

    def predict_only(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        assert model is not None, "a table model scores rows (pool.rows_pool), not arrays"
        return probabilities(model(x)[0], meta), None

    return Member(path, meta, predict_only)


def load_members(given: list[str]) -> list[Member]:
    """Every model ``--model`` names; they must share their class names and input kind."""
    members = [load_member(p) for g in given for p in resolve(g)]
    first = members[0]
    for other in members[1:]:
        if other.class_names != first.class_names or other.input_kind != first.input_kind:
            raise UserError(
                f"'{other.path}' and '{first.path}' differ in their classes or input; "
                "members must be models of the same task (an ensemble's or a compare's folds)"
            )
    return members
