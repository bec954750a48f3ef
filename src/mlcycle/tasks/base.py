"""The task contract: what every task declares, and what the framework reads from it.

A task is one :class:`Task` subclass: a LightningModule that owns a network, its loss and its
metrics. Everything around it (the CLI, ``train.py``, ``evaluate.py``, ``export.py``, the
diagnosis callbacks) reads only the names below, never the concrete class.

Writing a task::

    from mlcycle.tasks.base import Monitor, Task, register_task

    @register_task
    class RegressionTask(Task):
        \"\"\"Predict one number per image.

        Args:
            arch: a registered classification architecture (its head gives the outputs).
            loss_name: ``mse`` or ``l1``.
        \"\"\"

        task_name = "regression"  # the key of its evaluator and exporter
        monitor = Monitor("val/mae", "min")  # checkpoint, galleries and diagnosis follow it

        def __init__(self, arch: str = "small_cnn", loss_name: str = "mse", **kwargs: Any):
            super().__init__(arch=arch, **kwargs)  # the shared arguments, documented below
            self.model = build_model(arch, self.hparams.in_channels, 1)
            ...

        def training_step(self, batch, batch_idx): ...     # log "train/loss"
        def validation_step(self, batch, batch_idx): ...   # log "val/<metric>", the monitor among them
        def predict_step(self, batch, batch_idx): ...      # a dict of tensors per batch (below)

Class attributes:
    ``task_name`` (str): ``classification``, ``segmentation``, ``detection``, ... Registers the
    task in :data:`TASKS` (with ``@register_task``) and finds its evaluator
    (``mlcycle.evaluators.EVALUATORS``) and exporter (``mlcycle.export.exporters.EXPORTS``).
    ``monitor`` (:class:`Monitor`): the logged metric the best checkpoint, the galleries,
    ``metrics.json`` and the fit diagnosis follow, and whether higher (``max``) or lower
    (``min``) is better. ``epoch_metrics``: metrics printed on each epoch's summary line
    (empty: the monitor). ``linked``: the init arguments the CLI takes from the data module
    (``data.<name>`` -> ``model.init_args.<name>``); never written in a config.

Init arguments: the base takes the linked ones and the shared training ones (architecture
name and options, weights, optimizer and schedule, ``channels_last`` and ``compile``; see
:class:`Task`). A subclass lists only its own arguments, documents them in its docstring, and
passes the rest on as ``super().__init__(**kwargs)`` (or ``arch=arch, **kwargs`` to give
``arch`` its own default).
jsonargparse follows ``**kwargs`` into this signature, so ``--help`` and ``--print_config``
show every argument; ``save_hyperparameters`` here records the subclass's arguments too, so
``load_from_checkpoint`` rebuilds the task from ``hparams`` alone.

``predict_step(batch, batch_idx)`` returns a dict of tensors (or lists of them) per batch,
with ``"index"`` (the samples' positions in the data module, for galleries) and, when the
batch carries targets, ``"target"``. The task's evaluator receives exactly these dicts, on
the CPU, one batch at a time, from ``Trainer.predict`` (``mlcycle.evaluators.predict_split``);
exporters may use them to compare an artifact with the eager model.

``configure_optimizers`` is defined here once (``optimizer``, ``scheduler``, ...).
``baselines(datamodule, split)`` scores dummy baselines (majority and stratified, mean and
median, the empty prediction) on a split with the task's metrics: every run summary, evaluate.py
and compare.py's leaderboard show them.
``chance_level(datamodule)`` returns the score of a model that learned nothing for the
monitored metric (a :class:`~mlcycle.callbacks.chance.Chance`), or ``None`` (the default);
each task overrides it from what its data module counts (``chance_or_none`` guards it).
``configure_callbacks`` returns the recipe keys' callbacks; a task adds its own galleries to
``super().configure_callbacks()``. ``starts_from`` names other tasks whose runs ``init_from``
accepts (segmentation and detection: a classification run's backbone).
``configure_model`` applies ``channels_last`` and ``compile`` to the network in ``self.model``
once a Trainer runs the task; a task that cannot take them refuses them in its ``__init__``.

Helpers for subclasses that keep ``train_loss`` and ``val_loss`` (``MeanMetric``):
``log_train_loss`` logs a training step's loss (and metrics); ``defer_update`` queues a training
metric's update (applied together, before the epoch's values are computed);
``log_validation_epoch`` logs and resets a validation epoch's metrics and loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

import torch
from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.trainer.states import TrainerFn
from torchmetrics import Metric, MetricCollection

from mlcycle.callbacks.chance import Chance
from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.tasks.common import (
    check_common,
    compile_options,
    configure_optimizers,
    use_channels_last,
)
from mlcycle.tasks.deferred import DeferredUpdates, batches_end_here
from mlcycle.tasks.init_from import (
    check_data_kind,
    check_init_run,
    is_restoring,
    load_init,
    restoring,
)
from mlcycle.tasks.recipes import check_recipes, network, recipe_callbacks


class Monitor(NamedTuple):
    """The metric a task is judged by: a logged key and whether higher or lower is better."""

    metric: str
    mode: Literal["min", "max"]


class Task(LightningModule):
    """The base of every task: linked data arguments, shared training arguments, the contract.

    Args:
        num_classes: number of classes (from the data).
        in_channels: image channels (from the data).
        class_names: class names in index order (from the data).
        arch: a registered architecture of the task.
        arch_options: extra keyword arguments for the architecture builder.
        weights: pretrained weights to start from: a name (torchvision's ``IMAGENET1K_V2``,
            ``DEFAULT``; timm's tag ``a1_in1k``), loaded through the library's cache (downloaded
            when online), or a local ``.pth``/``.safetensors`` state dict. A head for other
            classes starts fresh; other input channels are adapted (see docs/pretrained.md).
        pretrained: start from the architecture's default pretrained weights (torchvision's
            ``DEFAULT``, timm's default tag); their preprocessing becomes the data's default.
        lr: peak learning rate.
        weight_decay: weight decay for the optimizer.
        optimizer: a ``torch.optim`` class name: ``AdamW``, ``SGD``, ``Adam``, ...
        optimizer_options: extra optimizer arguments, e.g. ``{momentum: 0.9, nesterov: true}``.
        scheduler: ``cosine`` (per step, with warm-up), ``onecycle`` or ``constant``.
        warmup_epochs: linear warm-up length in epochs (may be fractional).
        channels_last: keep the network's weights and the image batches in channels-last
            (NHWC) memory order; faster convolutions with mixed precision on recent GPUs.
        compile: ``torch.compile`` the network for training: ``true``, a mode
            (``reduce-overhead``, ``max-autotune``, ...) or a backend (``aot_eager``, ...).
        freeze_epochs: epochs that train only the head, the backbone frozen (BatchNorm
            statistics included); then the backbone unfreezes and the schedule restarts.
        unfreeze: ``all`` at once after ``freeze_epochs``, or ``gradual``: one layer group
            per epoch from the top.
        lr_decay: discriminative learning rates: the head trains at ``lr``, the layer group
            before it at ``lr * lr_decay``, the one before at ``lr * lr_decay**2``, ...
        init_from: an earlier run's directory: start from its best checkpoint; tensors whose
            shape differs (a new set of classes) are re-initialised and named.
        early_stopping: stop when the task's metric has not improved for this many
            validations, or ``{patience: 5, min_delta: 0}``.
        ema: decay of an exponential moving average of the weights (e.g. ``0.999``), which
            validation, the checkpoints and export use.
    """

    task_name: ClassVar[str]
    monitor: ClassVar[Monitor]
    epoch_metrics: ClassVar[tuple[str, ...]] = ()
    linked: ClassVar[tuple[str, ...]] = ("num_classes", "in_channels", "class_names")
    starts_from: ClassVar[tuple[str, ...]] = ()  # other tasks whose runs init_from takes

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        class_names: list[str] | None = None,
        arch: str = "small_cnn",
        arch_options: dict[str, Any] | None = None,
        weights: str | None = None,
        pretrained: bool = False,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        optimizer: str = "AdamW",
        optimizer_options: dict[str, Any] | None = None,
        scheduler: Literal["cosine", "onecycle", "constant"] = "cosine",
        warmup_epochs: float = 0.0,
        channels_last: bool = False,
        compile: bool | str = False,
        freeze_epochs: int = 0,
        unfreeze: Literal["all", "gradual"] = "all",
        lr_decay: float = 1.0,
        init_from: str | None = None,
        early_stopping: int | dict[str, float] | None = None,
        ema: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the subclass's arguments as well (Lightning walks its frame)
        check_common(lr, optimizer)  # fail now, not after the data is loaded
        compile_options(compile)
        check_recipes(freeze_epochs, unfreeze, lr_decay, early_stopping, ema)
        self._init_run = check_init_run(init_from, type(self))  # loaded in configure_model
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self._compiled = False
        self._deferred = DeferredUpdates()  # training metric updates, applied together
        self._handed: set[str] = set()  # the training metrics logged this epoch

    def configure_model(self) -> None:
        """``channels_last`` (weights and inputs, every stage) and ``compile`` (training only)
        on the network in ``self.model``.

        Lightning calls this hook when a Trainer runs the task, before the optimizer and any
        DDP wrapper are built; ``load_from_checkpoint`` calls it too, without a Trainer, and
        then nothing changes: export and evaluation load the plain, uncompiled network.
        ``Module.compile`` compiles in place, so the state-dict keys (and checkpoints) stay
        those of the plain network.
        """
        hp = self.hparams
        if self._trainer is not None and self._init_run is not None:
            self._load_init_run()
        if self._trainer is None or not (hp.channels_last or hp.compile):
            return
        network = getattr(self, "model", None)
        if not isinstance(network, torch.nn.Module):
            raise UserError(
                f"model.channels_last and model.compile act on self.model; {type(self).__name__} has no network there"
            )
        if hp.channels_last:
            use_channels_last(network)
        options = compile_options(hp.compile)
        if (
            options is not None
            and self.trainer.state.fn == TrainerFn.FITTING
            and not self._compiled
        ):
            network.compile(**options)
            self._compiled = True

    @classmethod
    def load_from_checkpoint(cls, *args: Any, **kwargs: Any) -> Any:
        """Lightning's, with ``init_from`` left unread: the checkpoint holds the weights."""
        with restoring():
            return super().load_from_checkpoint(*args, **kwargs)

    def _load_init_run(self) -> None:
        """``init_from``'s weights into ``self.model``, once, when training starts."""
        run, self._init_run = self._init_run, None
        data = getattr(self.trainer, "datamodule", None)
        check_data_kind(run, self.task_name, getattr(data, "data_kind", None))
        lines = load_init(network(self, "init_from"), run, self.class_names)
        if self.trainer.is_global_zero:
            print("\n".join(lines))

    def configure_callbacks(self) -> list[Callback]:
        """The recipe keys' callbacks (early stopping, EMA, freezing); a task that adds its
        own galleries returns them with ``*super().configure_callbacks()``."""
        return recipe_callbacks(self)

    @classmethod
    def weights_preprocessing(cls, init_args: dict[str, Any]) -> dict[str, Any] | None:
        """The input the named pretrained weights in ``init_args`` were trained on (``mean``,
        ``std``, ``image_size``, ``interpolation``, ``weights``), read from the library's
        metadata without loading them; None when the network starts otherwise (the default).
        ``train.py`` hands it to the data module as its ``preprocessing`` default."""
        return None

    def start_weights(self) -> dict[str, Any]:
        """``weights``, ``pretrained`` and ``backbone_weights`` to build the network with; none
        while the task is rebuilt from its own checkpoint, which holds the weights (nothing is
        read or downloaded then: export and serve work offline)."""
        hp = self.hparams
        if is_restoring():
            return {"weights": None, "pretrained": False, "backbone_weights": None}
        return {
            "weights": hp.weights,
            "pretrained": hp.pretrained,
            "backbone_weights": hp.get("backbone_weights"),
        }

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        """What the evaluator consumes, per batch: at least ``index`` (and ``target``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define predict_step")

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self)

    def chance_level(self, datamodule: Any) -> Chance | None:
        """The monitored metric's score without learning; ``None`` when unknown (the default:
        the fit diagnosis then skips its chance rule). Each task answers it in its own file."""
        return None

    def baselines(self, datamodule: Any, split: str = "val") -> dict[str, dict[str, float]]:
        """Dummy baselines scored on ``split`` with the task's own metrics, fitted on the train
        split: name -> metric (no ``val/``) -> score, e.g. ``{"majority": {"f1": 0.22}}``
        (helpers: :mod:`mlcycle.callbacks.baselines`); empty when none fits (the default)."""
        return {}

    def log_train_loss(
        self, loss: torch.Tensor, batch_size: int | None = None, **metrics: Metric
    ) -> torch.Tensor:
        """Accumulate ``loss`` in ``self.train_loss`` and log it per epoch as ``train/loss`` (on
        the bar), and each already updated metric as ``train/<name>``; returns ``loss``.
        ``batch_size`` is kept for callers; metric objects weigh their own updates."""
        self.defer_update(self.train_loss, loss.detach())
        self._log_epoch_metric("train/loss", self.train_loss, prog_bar=True)
        for name, metric in metrics.items():
            self._log_epoch_metric(f"train/{name}", metric)
        return loss

    def defer_update(self, metric: Metric, *tensors: torch.Tensor) -> None:
        """``metric.update(*tensors)`` for a training step, queued with the others and applied
        together every 64 steps and at the epoch's last batch (tasks/deferred.py): the metric
        then holds the same counts when Lightning computes it."""
        self._deferred.add(metric, *tensors)

    def on_train_start(self) -> None:
        self._handed.clear()  # a fit after another one (a learning-rate search) logs anew

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Apply the queued metric updates when the epoch's training batches end; a subclass
        that overrides this hook calls it."""
        if batches_end_here(self.trainer):
            self._deferred.flush()
            self._handed.clear()  # Lightning resets them at the epoch's end: log again

    def _log_epoch_metric(self, name: str, metric: Metric, prog_bar: bool = False) -> None:
        """Hand ``metric`` to Lightning once an epoch: it accumulates every update anyway, and
        Lightning computes and resets it at the epoch's end. Each ``self.log`` call walks the
        metric's state (about 0.3 ms on the CPU), and asking Lightning whether it holds the
        metric already costs 30 us: the names handed over this epoch are kept here."""
        if name in self._handed:
            return
        self.log(name, metric, on_step=False, on_epoch=True, prog_bar=prog_bar)
        self._handed.add(name)

    def log_validation_epoch(
        self,
        metrics: Metric | MetricCollection,
        flatten: Callable[[Any, list[str], str], dict[str, float]],
        prog_bar: set[str],
    ) -> None:
        """Log ``flatten(metrics.compute(), class_names, "val")`` and ``val/loss`` (from
        ``self.val_loss``), those in ``prog_bar`` on the bar; then reset both metrics."""
        values = flatten(metrics.compute(), self.class_names, "val")
        values["val/loss"] = float(self.val_loss.compute())
        metrics.reset()
        self.val_loss.reset()
        self.log_epoch(values, prog_bar)

    def log_epoch(self, values: dict[str, float], prog_bar: set[str]) -> None:
        """Log an epoch's (already reduced) values; those in ``prog_bar`` also on the bar."""
        # torchmetrics reduced them across processes already; sync_dist keeps DDP quiet.
        self.log_dict(
            {k: v for k, v in values.items() if k in prog_bar}, prog_bar=True, sync_dist=True
        )
        self.log_dict({k: v for k, v in values.items() if k not in prog_bar}, sync_dist=True)


TASKS: Registry[type[Task]] = Registry(
    "task", "model.class_path", "mlcycle.tasks", ["mlcycle.tasks"]
)

T = TypeVar("T", bound=type[Task])


def register_task(cls: T) -> T:
    """Class decorator: register ``cls`` in :data:`TASKS` under its ``task_name``."""
    TASKS.add(cls.task_name, cls)
    return cls


def per_class(values: torch.Tensor, class_names: list[str]) -> dict[str, float]:
    """A per-class metric tensor as ``{class name: value}``."""
    return {c: float(v) for c, v in zip(class_names, values.tolist(), strict=True)}


def flatten_per_class(
    values: dict[str, torch.Tensor], class_names: list[str], prefix: str
) -> dict[str, float]:
    """Computed metrics as ``<prefix>/<name>``; a ``<name>_per_class`` tensor becomes
    ``<prefix>/<name>/<class>``, and ``<prefix>/error`` is 1 - ``<prefix>/acc``."""
    flat = {}
    for name, value in values.items():
        if name.endswith("_per_class"):
            metric = name.removesuffix("_per_class")
            for cls, v in per_class(value, class_names).items():
                flat[f"{prefix}/{metric}/{cls}"] = v
        else:
            flat[f"{prefix}/{name}"] = float(value)
    flat[f"{prefix}/error"] = 1.0 - flat[f"{prefix}/acc"]
    return flat
