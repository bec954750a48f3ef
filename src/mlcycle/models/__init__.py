"""Architectures. Importing this package registers every built-in one."""

from mlcycle.models import small_cnn, torchvision_models  # noqa: F401  (registration)
from mlcycle.models.registry import MODELS, build_model, list_models, register_model

__all__ = ["MODELS", "build_model", "list_models", "register_model"]
from mlcycle.models import detection_models, segmentation_models, unet  # noqa: E402,F401  (task registries)
