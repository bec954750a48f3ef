"""A comparison's YAML file: the base training config, the folds and the candidates.

```yaml
train: [configs/quickstart.yaml]     # train.py config file(s): the data, and the deep defaults
args: [--trainer.max_epochs=3]       # train.py arguments for every deep candidate
folds: 5
candidates:
  - {name: small_cnn, args: [--model.init_args.arch=small_cnn]}         # deep: train.py runs
  - {name: mine, config: configs/my_model.yaml}                         # any LightningModule config
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 500}}
  - {name: logreg_pca, estimator: sklearn.linear_model.LogisticRegression, pca: 32}
  - {name: svc_emb, estimator: sklearn.svm.SVC, features: embeddings:small_cnn}
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.yaml_files import read_mapping
from mlcycle.selection.keys import check_keys, string_list

TOP_KEYS = {"train", "args", "folds", "fold_seed", "objective", "classic_size", "candidates"}
DEEP_KEYS = {"name", "config", "args"}
# config and args: a table comparison's classic candidate is a train.py run too
CLASSIC_KEYS = {"name", "estimator", "params", "pca", "scale", "features", "config", "args"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    features: str = "pixels"  # classic: "pixels" or "embeddings:<deep candidate>"

    @property
    def embeddings_of(self) -> str | None:
        return self.features.split(":", 1)[1] if self.features.startswith("embeddings:") else None


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


def candidate(raw: Any, position: int) -> Candidate:
    where = f"candidate {position + 1}"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise UserError(f"{where}: a candidate is a mapping with a 'name'")
    name = raw["name"]
    where = f"candidate '{name}'"
    if not NAME.match(name):
        raise UserError(f"{where}: a name uses letters, digits, '_', '.' and '-' only")
    if "estimator" in raw:
        check_keys(set(raw), CLASSIC_KEYS, where)
        if not isinstance(raw["estimator"], str) or not raw["estimator"]:
            raise UserError(f"{where}: 'estimator' is an import path like sklearn.svm.SVC")
        features = str(raw.get("features") or "pixels")
        if features != "pixels" and not features.startswith("embeddings:"):
            raise UserError(f"{where}: 'features' is 'pixels' or 'embeddings:<deep candidate>'")
        return Candidate(
            name,
            "classic",
            estimator=raw["estimator"],
            params=dict(raw.get("params") or {}),
            pca=raw.get("pca"),
            scale=bool(raw.get("scale", True)),
            features=features,
            configs=string_list(raw.get("config"), "config", where),
            args=string_list(raw.get("args"), "args", where),
        )
    check_keys(set(raw), DEEP_KEYS, where)
    return Candidate(
        name,
        "deep",
        configs=string_list(raw.get("config"), "config", where),
        args=string_list(raw.get("args"), "args", where),
    )


def load_spec(path: str | Path) -> CompareSpec:
    """Read and check a comparison file; every message names the key at fault."""
    path = Path(path)
    raw = read_mapping(path, "comparison config")
    check_keys(set(raw), TOP_KEYS, str(path))
    train = string_list(raw.get("train"), "train", str(path))
    if not train:
        raise UserError(f"{path}: 'train' names the train.py config(s) the candidates share")
    raw_candidates = raw.get("candidates") or []
    if not isinstance(raw_candidates, list) or not raw_candidates:
        raise UserError(f"{path}: 'candidates' is a non-empty list")
    candidates = [candidate(c, i) for i, c in enumerate(raw_candidates)]
    names = [c.name for c in candidates]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{path}: candidate name '{twice[0]}' is used twice")
    for c in candidates:
        source = c.embeddings_of
        if source and source not in {d.name for d in candidates if d.kind == "deep"}:
            raise UserError(
                f"candidate '{c.name}': features '{c.features}' names no deep candidate"
            )
    return CompareSpec(
        path=path,
        train=train,
        args=string_list(raw.get("args"), "args", str(path)),
        folds=int(raw.get("folds", 5)),
        fold_seed=int(raw.get("fold_seed", 42)),
        objective=raw.get("objective"),
        classic_size=int(raw.get("classic_size", 32)),
        candidates=candidates,
    )
