"""An exponential moving average of the weights (``model.ema``): validation runs on it, the
checkpoints hold it in ``state_dict`` (the raw weights in ``current_model_state``, for a
resume), and training ends with it in the model. So ``best.ckpt``, evaluation and export all
get the averaged network."""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch.optim.swa_utils import AveragedModel


class EMA(EMAWeightAveraging):
    """Lightning's ``EMAWeightAveraging`` (parameters and buffers, BatchNorm statistics
    included), updated after every optimizer step: ``avg = decay * avg + (1 - decay) * w``."""

    def __init__(self, decay: float) -> None:
        super().__init__(decay=decay)
        self.decay = decay

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Lightning's own setup warns that configure_model may shard layers; ours only loads
        # model.init_from and sets channels-last, so call it quietly before the copy.
        if stage == "fit":
            pl_module.configure_model()
            self._average_model = AveragedModel(
                model=pl_module,
                device=self._device or pl_module.device,
                use_buffers=self._use_buffers,
                **self._kwargs,
            )
