"""Rebuild a trained run's model and data from its run directory, safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule

from mlcycle.core.errors import UserError
from mlcycle.core.hashing import file_sha256
from mlcycle.core.imports import import_object
from mlcycle.run.folder import read_run_dir
from mlcycle.tasks.base import Task


def _import(class_path: str, base: type) -> type:
    cls = import_object(class_path, "class in the run's config.yaml")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise UserError(f"'{class_path}' in the run's config.yaml is not a {base.__name__}")
    return cls


def sha256(path: Path) -> str:
    return file_sha256(path)


class Run:
    """A run directory written by ``train.py``."""

    def __init__(self, path: str | Path) -> None:
        self.path, self.config = read_run_dir(path)
        data_file = self.path / "data.json"
        self.data_info: dict[str, Any] = (
            json.loads(data_file.read_text()) if data_file.is_file() else {}
        )

    def checkpoint(self, which: str = "best") -> Path:
        path = self.path / "checkpoints" / f"{which}.ckpt"
        if not path.is_file():
            raise UserError(
                f"run '{self.path}' has no {which} checkpoint ('{path}'); train it first"
            )
        return path

    def load_model(self, which: str = "best") -> Task:
        """The task of checkpoint ``which``, rebuilt from its saved hyperparameters, in eval mode."""
        cls = _import(self.config["model"]["class_path"], Task)
        try:
            model = cls.load_from_checkpoint(
                self.checkpoint(which), map_location="cpu", weights_only=True
            )
        except (RuntimeError, KeyError, OSError) as exc:
            raise UserError(f"checkpoint of run '{self.path}' cannot be loaded: {exc}") from exc
        return model.eval()

    def load_data(self, **overrides: Any) -> LightningDataModule:
        """The run's data module, on the run's recorded split and normalization."""
        cls = _import(self.config["data"]["class_path"], LightningDataModule)
        kwargs = dict(self.config["data"].get("init_args") or {})
        if (self.path / "splits.csv").is_file():
            kwargs["split_file"] = str(self.path / "splits.csv")
        for key in ("mean", "std", "channels"):
            if key in self.data_info:
                kwargs[key] = self.data_info[key]
        kwargs.update(overrides)
        return cls(**kwargs)
