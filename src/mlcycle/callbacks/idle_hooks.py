"""Per-batch callback hooks that do nothing, taken out of Lightning's dispatch.

Lightning calls every callback at six hooks of each training step (and two of each validation,
test and predict batch), whether the callback defines them or inherits ``Callback``'s empty
ones: a dozen callbacks make 72 calls a step, each through the profiler's context manager and
the callback's ``state_key``, about 5 us apiece. Lightning skips an attribute that is not
callable (``trainer/call.py``), so an empty hook set to ``None`` on the instance costs one
``getattr`` instead. The callbacks' behaviour is unchanged: only calls that did nothing go.

:class:`QuietProfiler` is the same idea for the profiler a run without one gets: Lightning
wraps each of the ~90 hook and loop calls of a step in ``profiler.profile(name)``, a generator
context manager (about 1 us each) that does nothing when no profiler is asked for.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.profilers import PassThroughProfiler

BATCH_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def is_idle(callback: Callback, hook: str) -> bool:
    """Whether ``callback``'s ``hook`` does nothing: ``Callback``'s own empty hook, or one of
    Lightning's hooks that returns at once in the callback's configuration."""
    if hook in vars(callback):  # set on the instance: already skipped, or someone's wrapper
        return False
    if getattr(type(callback), hook) is getattr(Callback, hook):
        return True
    if isinstance(callback, ModelCheckpoint) and hook == "on_train_batch_end":
        # saves on a batch only with every_n_train_steps or train_time_interval
        return callback._every_n_train_steps < 1 and callback._train_time_interval is None
    if isinstance(callback, LearningRateMonitor) and hook == "on_train_batch_start":
        return callback.logging_interval == "epoch"  # per-step rates only otherwise
    return False


def skip_idle_hooks(callbacks: list[Callback]) -> list[str]:
    """Set each idle per-batch hook of ``callbacks`` to ``None``; returns ``Class.hook`` of
    those skipped."""
    skipped = []
    for callback in callbacks:
        for hook in BATCH_HOOKS:
            if is_idle(callback, hook):
                setattr(callback, hook, None)
                skipped.append(f"{type(callback).__name__}.{hook}")
    return skipped


class SkipIdleHooks(Callback):
    """At ``setup``, when the trainer holds all its callbacks (the task's
    ``configure_callbacks`` included), takes their idle per-batch hooks out of the dispatch."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        skip_idle_hooks(trainer.callbacks)


class QuietProfiler(PassThroughProfiler):
    """Lightning's default profiler (none), whose ``profile`` hands back one shared empty
    context instead of building a generator context manager at every call."""

    _nothing = nullcontext()

    def profile(self, action_name: str) -> AbstractContextManager[None]:  # type: ignore[override]
        return self._nothing
