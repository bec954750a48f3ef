"""Which extra installs which optional import, so that a missing one is one line naming the
extra to add: ``mlcycle train needs the 'train' extra (torch is not installed): pip install
'mlcycle[train]'``. Commands print it and exit 2 (``commands.guard.main_guard``); the API raises
it as :class:`MissingExtra`, a :class:`UserError`.

The base install (numpy, pillow, onnxruntime, pyyaml, jinja2, jsonargparse) runs predict,
``mlcycle.load`` and every command's command line; pyproject.toml's optional dependencies list
each extra's packages, and tests/test_serve_install.py checks that this table follows them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlcycle.core.errors import UserError

# Top-level import name -> the extras that install it, the usual one first. Packages our code
# imports that come with another (starlette with fastapi, tqdm with lightning) are named too.
EXTRAS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("fastapi", "starlette", "pydantic", "uvicorn", "multipart", "python_multipart"),
        ("serve",),
    ),
    "prometheus_client": ("serve",),
    "sqlalchemy": ("serve", "train", "mlflow"),
    "scipy": ("serve", "train"),
    "matplotlib": ("serve", "train"),
    **dict.fromkeys(
        ("torch", "torchvision", "lightning", "pytorch_lightning", "torchmetrics"), ("train",)
    ),
    **dict.fromkeys(
        ("albumentations", "tensorboard", "onnx", "onnxscript", "pycocotools", "captum"),
        ("train",),
    ),
    **dict.fromkeys(("tqdm", "threadpoolctl"), ("train",)),
    **dict.fromkeys(("timm", "huggingface_hub", "safetensors"), ("train",)),  # pretrained
    "sklearn": ("train", "tables"),
    "pandas": ("train", "tables"),
    **dict.fromkeys(("pyarrow", "skl2onnx", "skops"), ("tables",)),
    **dict.fromkeys(("lightgbm", "xgboost", "catboost", "onnxmltools"), ("boosted",)),
    **dict.fromkeys(("optuna", "optuna_integration"), ("tune",)),
    **dict.fromkeys(
        ("nbformat", "nbclient", "ipykernel", "IPython", "jupyter_client", "traitlets"), ("eda",)
    ),
    **dict.fromkeys(("mlflow", "alembic"), ("mlflow",)),
    "cleanlab": ("labels",),
    "psycopg": ("postgres",),  # loaded by SQLAlchemy for a postgresql+psycopg:// URL
    **dict.fromkeys(("litdata", "boto3", "botocore"), ("stream",)),  # mlcycle optimize, streams
    "ray": ("ray",),  # compare.py / tune.py --executor ray
    "ipywidgets": ("notebook",),  # tqdm.auto's notebook bars
}

# The extra each command needs (the module name under mlcycle.commands); any other: train.
# predict needs only the base; serve's extra comes in with --db or --query.
COMMANDS = {"predict": "serve", "serve": "serve", "monitor": "serve", "tune": "tune", "eda": "eda"}
NAMES = {"validate_data": "validate", "materialize_data": "materialize"}


class MissingExtra(UserError):
    """An optional package is not installed; the message names the extra that brings it."""

    def __init__(self, message: str, module: str, extra: str) -> None:
        super().__init__(message)
        self.module = module
        self.extra = extra


def extra_for(module: str, command: str | None = None) -> str | None:
    """The extra that installs the top-level import ``module``: the command's own extra when it
    is one of them, else the usual one; None for a module no extra installs."""
    extras = EXTRAS.get(module, ())
    wanted = COMMANDS.get(command or "", "train")
    if wanted in extras:
        return wanted
    return extras[0] if extras else None


def missing_extra(exc: BaseException, what: str, command: str | None = None) -> MissingExtra | None:
    """``exc`` as the one line naming the extra to install, when it is a missing top-level
    module an extra installs (a missing submodule is a broken install, not an extra)."""
    if isinstance(exc, MissingExtra):
        return exc
    if not isinstance(exc, ModuleNotFoundError) or not exc.name or "." in exc.name:
        return None
    extra = extra_for(exc.name, command)
    if extra is None:
        return None
    return MissingExtra(
        f"{what} needs the '{extra}' extra ({exc.name} is not installed): "
        f"pip install 'mlcycle[{extra}]'",
        exc.name,
        extra,
    )


def command_missing_extra(exc: BaseException, module: str) -> MissingExtra | None:
    """:func:`missing_extra` for the command whose module under mlcycle.commands is ``module``
    (``validate_data`` is ``mlcycle validate``)."""
    command = module.rpartition(".")[2]
    return missing_extra(exc, f"mlcycle {NAMES.get(command, command)}", command)


@contextmanager
def needs_extras(what: str) -> Iterator[None]:
    """Raise :class:`MissingExtra` (naming ``what``: ``mlcycle.train``) where the block meets a
    module an extra installs; any other error passes unchanged."""
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc, what)
        if missing is None:
            raise
        raise missing from exc
