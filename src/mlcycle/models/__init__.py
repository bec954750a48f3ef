"""Architectures: each file registers its own; the registries import them when first asked."""

from mlcycle.models.registry import (
    CLASSIFICATION_MODELS,
    DETECTION_MODELS,
    SEGMENTATION_MODELS,
    build_architecture,
    build_model,
    list_models,
    register_detection_model,
    register_model,
    register_segmentation_model,
)

__all__ = [
    "CLASSIFICATION_MODELS",
    "DETECTION_MODELS",
    "SEGMENTATION_MODELS",
    "build_architecture",
    "build_model",
    "list_models",
    "register_detection_model",
    "register_model",
    "register_segmentation_model",
]
