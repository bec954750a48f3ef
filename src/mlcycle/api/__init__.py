"""The Python API for notebooks and pipelines: the same code the commands run.

    import mlcycle
    run = mlcycle.train("configs/quickstart.yaml", trainer={"max_epochs": 3})
    run.evaluate("test"); run.export(quantize="int8")
    model = mlcycle.load(run.path / "export")
    model.predict(["a.png", pil_image, numpy_array])
    board = mlcycle.compare("configs/compare/digits.yaml", folds=5)

Every name is imported on first use: ``import mlcycle`` imports neither torch nor Lightning,
and ``mlcycle.load`` (an exported model) never does. Errors a user can fix are
:class:`mlcycle.UserError` with the message the command prints; an argument of the wrong type is
:class:`mlcycle.WrongType`, a ``UserError`` and a ``TypeError``; a part whose extra is not
installed is :class:`mlcycle.MissingExtra`, a ``UserError`` naming the extra (docs/api.md)."""

from mlcycle.core.imports import lazy_names

_LAZY = {
    "train": "mlcycle.api.training",
    "Run": "mlcycle.api.run",
    "load": "mlcycle.api.model",
    "Model": "mlcycle.api.model",
    "compare": "mlcycle.api.comparison",
    "UserError": "mlcycle.core.errors",
    "WrongType": "mlcycle.api.errors",
    "MissingExtra": "mlcycle.core.extras",
}


__getattr__ = lazy_names("mlcycle.api", _LAZY)


__all__ = sorted(_LAZY)
