"""A comparison's YAML file: the base training config, the folds and the candidates; typed keys
that jsonargparse checks (``mlcycle compare --config FILE`` reads it as its own config file).

```yaml
train: [configs/quickstart.yaml]     # train.py config file(s): the data, and the deep defaults
args: [--trainer.max_epochs=3]       # train.py arguments for every deep candidate
folds: 5
slices: [brightness]                 # the best candidate's out-of-fold slices (evaluate --slices)
candidates:
  - {name: small_cnn, args: [--model.init_args.arch=small_cnn]}         # deep: train.py runs
  - {name: mine, config: configs/my_model.yaml}                         # any LightningModule config
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 500}}
  - {name: logreg_pca, estimator: sklearn.linear_model.LogisticRegression, pca: 32}
  - {name: svc_emb, estimator: sklearn.svm.SVC, features: embeddings:small_cnn}
  - {name: probe, estimator: sklearn.linear_model.LogisticRegression, features: backbone:resnet18}
  - {name: probe_run, estimator: sklearn.linear_model.LogisticRegression, features: run:runs/pre}
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonargparse import ArgumentParser, Namespace

from mlcycle.core.errors import UserError
from mlcycle.core.keys import check_keys, parse_yaml_keys, string_list
from mlcycle.selection.compare.budget import parse_duration
from mlcycle.selection.executors import ExecutorSettings, add_executor_arguments, settings_of

if TYPE_CHECKING:
    # mlcycle.evaluators imports Lightning: not before compare's options are parsed
    from mlcycle.evaluators.slices import SliceOptions

DEEP_KEYS = {"name", "config", "args"}
# config and args: a table comparison's classic candidate is a train.py run too
BACKBONE_KEYS = {"weights", "pretrained", "image_size"}  # classic on backbone:<arch> only
CLASSIC_KEYS = {"name", "estimator", "params", "pca", "scale", "features", "config", "args"}
CLASSIC_KEYS |= BACKBONE_KEYS
FEATURES = "'pixels', 'embeddings:<deep candidate>', 'backbone:<arch>' or 'run:<run dir>'"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class Entry:
    """A candidate as the YAML gives it: deep (name, config, args) or classic (with an estimator).

    Args:
        name: the candidate's name (letters, digits, '_', '.', '-')
        config: deep: extra train.py config file(s)
        args: deep: extra train.py arguments
        estimator: classic: a scikit-learn estimator's import path (sklearn.svm.SVC)
        params: classic: the estimator's parameters
        pca: classic: PCA components (or a variance share) before it
        scale: classic: standardize the features first (default true)
        features: classic: pixels (default), embeddings:<deep candidate> (each fold's
            network), backbone:<arch> (a pretrained network: a linear probe) or run:<run dir>
            (an earlier train.py run's network)
        weights: backbone: the weights by name (IMAGENET1K_V1, a timm tag) or a local file
        pretrained: backbone: the architecture's default weights (default true unless weights)
        image_size: backbone: the size images are resized to (default: the weights' own)
    """

    name: str
    config: list[str] | str | None = None
    args: list[str] | str | None = None
    estimator: str | None = None
    params: dict[str, Any] | None = None
    pca: int | float | None = None
    scale: bool | None = None
    features: str | None = None
    weights: str | None = None
    pretrained: bool | None = None
    image_size: int | None = None


@dataclass
class Candidate:
    """One model family with its parameters: a train.py run per fold, or a scikit-learn
    estimator fitted per fold on resized pixels (or on a deep candidate's embeddings)."""

    name: str
    kind: str  # "deep" or "classic"
    configs: list[str] = field(default_factory=list)  # deep: extra train.py config files
    args: list[str] = field(default_factory=list)  # deep: extra train.py arguments
    estimator: str = ""  # classic: the estimator's import path
    params: dict[str, Any] = field(default_factory=dict)
    pca: int | float | None = None  # classic: PCA components (or variance share) before it
    scale: bool = True  # classic: standardize the features first
    features: str = "pixels"  # classic: pixels, embeddings:<deep>, backbone:<arch>, run:<dir>
    weights: str | None = None  # backbone: weights by name or a local file
    pretrained: bool = True  # backbone: the default weights when no weights are named
    image_size: int | None = None  # backbone: the input size (default: the weights')

    def source(self, kind: str) -> str | None:
        """What follows ``<kind>:`` in ``features`` (a deep candidate, an arch, a run dir)."""
        head, _, rest = self.features.partition(":")
        return rest if head == kind and rest else None

    @property
    def embeddings_of(self) -> str | None:
        return self.source("embeddings")


def slice_options(cfg: Namespace | None = None) -> SliceOptions:
    """The keys ``slices``, ``slice_min_samples`` and ``slice_margin`` of ``cfg`` (without it:
    the defaults). Imported here: ``mlcycle.evaluators`` imports Lightning, which a mistyped
    option should not wait for."""
    from mlcycle.evaluators.slice_columns import parse_names
    from mlcycle.evaluators.slices import SliceOptions

    if cfg is None:
        return SliceOptions()
    return SliceOptions(parse_names(cfg.slices), cfg.slice_min_samples, cfg.slice_margin)


@dataclass
class CompareSpec:
    path: Path
    train: list[str]
    args: list[str]
    folds: int
    fold_seed: int
    objective: dict[str, Any] | None
    classic_size: int
    candidates: list[Candidate]
    fold_gap: int = 0  # time folds: rows left out between a fold's training and val rows
    time_limit: float | None = None  # seconds the whole command may take (--time_limit)
    preset: str | None = None  # a candidate set of the comparison's kind (--preset)
    export: bool = False  # the comparison's one model exported at its end (--export)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)  # --executor ray
    slices: SliceOptions = field(default_factory=slice_options)  # the best candidate by slice


def add_arguments(parser: ArgumentParser) -> None:
    """The comparison's keys, as options of ``parser`` (and keys of its config file)."""
    strings = list[str] | str
    parser.add_argument("--train", type=strings, default=[], help="train.py config file(s): the data, and the deep defaults")  # fmt: skip
    parser.add_argument("--args", type=strings, default=[], help="train.py arguments for every deep candidate")  # fmt: skip
    parser.add_argument("--folds", type=int, default=5, help="number of folds")
    parser.add_argument("--fold_seed", type=int, default=42, help="seed of the fold assignment")
    parser.add_argument("--fold_gap", type=int, default=0, help="time-ordered folds (data.time_column): rows left out between each fold's training rows and its validation rows")  # fmt: skip
    parser.add_argument("--objective", type=dict[str, Any] | None, default=None, help="the gate (default: the base config's), e.g. {metric: val/f1, min: 0.95}")  # fmt: skip
    parser.add_argument("--classic_size", type=int, default=32, help="classic models see images resized to at most this per side")  # fmt: skip
    parser.add_argument("--time_limit", type=str | float | None, default=None, help="wall time of the whole command: seconds (600) or 90s, 10m, 1h; what does not fit is skipped and listed")  # fmt: skip
    parser.add_argument("--preset", type=str | None, default=None, help="a candidate set added to the candidates (tables: fast, medium, best); a candidate of the same name wins")  # fmt: skip
    parser.add_argument("--export", action="store_true", help="at the end, export the comparison's one model to <out>/final/export: the shortlist's ensemble when it beats the best single model out of fold, else the best candidate's fold runs averaged; --time_limit covers it")  # fmt: skip
    add_executor_arguments(parser)
    parser.add_argument("--slices", type=list[str] | str | None, default=None, help="columns the best candidate's out-of-fold predictions are scored by slice, e.g. [camera, brightness] (default: the kind of data's; none: no slices)")  # fmt: skip
    parser.add_argument("--slice_margin", type=float, default=0.05, help="flag a slice below the whole by more than this")  # fmt: skip
    parser.add_argument("--slice_min_samples", type=int, default=20, help="a smaller slice is reported as too small, never flagged")  # fmt: skip
    parser.add_argument("--candidates", type=list[Entry], default=[], help="the candidates: {name, config, args} (deep) or {name, estimator, params, pca, scale, features, weights, pretrained, image_size} (classic)")  # fmt: skip


def candidate(raw: Namespace | dict[str, Any]) -> Candidate:
    given = {k: v for k, v in dict(raw).items() if v is not None}
    where = f"candidate '{given['name']}'"
    if not NAME.match(given["name"]):
        raise UserError(f"{where}: a name uses letters, digits, '_', '.' and '-' only")
    configs = string_list(given.get("config"), "config", where)
    args = string_list(given.get("args"), "args", where)
    if "estimator" not in given:
        check_keys(set(given), DEEP_KEYS, where)
        return Candidate(given["name"], "deep", configs=configs, args=args)
    if not given["estimator"]:
        raise UserError(f"{where}: 'estimator' is an import path like sklearn.svm.SVC")
    features = str(given.get("features") or "pixels")
    head, _, rest = features.partition(":")
    if features != "pixels" and (head not in ("embeddings", "backbone", "run") or not rest):
        raise UserError(f"{where}: 'features' is {FEATURES}; got '{features}'")
    extra = sorted(BACKBONE_KEYS & set(given))
    if extra and head != "backbone":
        raise UserError(f"{where}: '{extra[0]}' goes with features: backbone:<arch> only")
    if given.get("image_size") is not None and given["image_size"] < 8:
        raise UserError(f"{where}: 'image_size' is a side in pixels (8 or more)")
    return Candidate(
        given["name"],
        "classic",
        estimator=given["estimator"],
        params=dict(given.get("params") or {}),
        pca=given.get("pca"),
        scale=bool(given.get("scale", True)),
        features=features,
        weights=given.get("weights"),
        pretrained=bool(given.get("pretrained", "weights" not in given)),
        image_size=given.get("image_size"),
        configs=configs,
        args=args,
    )


def spec_of(cfg: Namespace, path: Path) -> CompareSpec:
    """The comparison of parsed keys, checked as a whole (unique names, embeddings of a deep
    candidate); every message names the key at fault."""
    train = string_list(cfg.train, "train", str(path))
    if not train:
        raise UserError(f"{path}: 'train' names the train.py config(s) the candidates share")
    if not cfg.candidates and not cfg.preset:
        raise UserError(f"{path}: 'candidates' is a non-empty list (or give --preset)")
    if cfg.fold_gap < 0:
        raise UserError(f"{path}: 'fold_gap' is a number of rows, 0 or more; got {cfg.fold_gap}")
    candidates = [candidate(c) for c in cfg.candidates]
    names = [c.name for c in candidates]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{path}: candidate name '{twice[0]}' is used twice")
    check_embeddings(candidates)
    return CompareSpec(
        path=path,
        train=train,
        args=string_list(cfg.args, "args", str(path)),
        folds=cfg.folds,
        fold_seed=cfg.fold_seed,
        objective=cfg.objective,
        classic_size=cfg.classic_size,
        candidates=candidates,
        fold_gap=cfg.fold_gap,
        time_limit=parse_duration(cfg.time_limit),
        preset=cfg.preset,
        export=bool(cfg.export),
        executor=settings_of(cfg),
        slices=slice_options(cfg),
    )


def check_embeddings(candidates: list[Candidate]) -> None:
    for c in candidates:
        source = c.embeddings_of
        if source and source not in {d.name for d in candidates if d.kind == "deep"}:
            raise UserError(
                f"candidate '{c.name}': features '{c.features}' names no deep candidate"
            )


def add_preset(spec: CompareSpec, presets: dict[str, list[dict[str, Any]]], kind: str) -> None:
    """Add ``spec.preset``'s candidates (of ``presets``, the comparison kind's) after the
    YAML's; a YAML candidate of the same name wins."""
    if not spec.preset:
        return
    if spec.preset not in presets:
        offered = ", ".join(presets) or "none"
        raise UserError(f"--preset '{spec.preset}': {kind} comparisons offer {offered}")
    given = {c.name for c in spec.candidates}
    added = [candidate(e) for e in presets[spec.preset] if e["name"] not in given]
    spec.candidates = [*spec.candidates, *added]
    check_embeddings(spec.candidates)


def load_spec(path: str | Path) -> CompareSpec:
    """Read and check a comparison file; every message names the key at fault."""
    path = Path(path)
    return spec_of(parse_yaml_keys(path, "comparison config", add_arguments), path)
