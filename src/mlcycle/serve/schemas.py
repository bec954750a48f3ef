"""Request and response bodies of the server, as pydantic models (they make the OpenAPI docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=1000, description="echoed back; default imageN")
    data: str = Field(description="the image file (PNG, JPEG, ...), base64; a data: URL works")


class PredictJSON(BaseModel):
    """``POST /v1/predict`` as JSON (the other form is multipart, files under ``files``)."""

    model_config = ConfigDict(extra="forbid")
    images: list[ImageIn] = Field(min_length=1)


class RowsJSON(BaseModel):
    """``POST /v1/predict`` to a table model: rows of ``{column: value}`` (null is missing); a
    bare list of rows works too, and so do CSV files under the multipart field ``files``."""

    rows: list[dict[str, Any]] = Field(min_length=1)


class TopClass(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    class_: str = Field(alias="class")
    probability: float


class Box(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    class_: str = Field(alias="class")
    index: int
    score: float
    box: list[float] = Field(description="x1, y1, x2, y2 in the image's own pixels")


class ImageResult(BaseModel):
    """One image's answer; ``error`` instead when it could not be read. Which other fields are
    present depends on the model's output form (model.json ``output.kind``): classes (class,
    index, confidence, top_k), mask (size, mask_png, class_shares), boxes (size, boxes),
    labels (labels, probabilities, threshold), table (row; class, confidence, probabilities,
    or prediction); an undescribed output: task, outputs."""

    model_config = ConfigDict(populate_by_name=True)
    name: str = Field(description="the image's name; a table row's id column, else 'row N'")
    prediction_id: str | None = Field(None, description="send it back with /v1/feedback")
    row: int | None = Field(None, description="a table row: its place in the request, from 1")
    prediction: float | None = Field(None, description="a table regression's predicted number")
    error: str | None = None
    class_: str | None = Field(None, alias="class")
    index: int | None = None
    confidence: float | None = None
    top_k: list[TopClass] | None = None
    size: list[int] | None = Field(None, description="width, height of the image")
    mask_png: str | None = Field(
        None, description="base64 PNG of class indices at the image's own size"
    )
    class_shares: dict[str, float] | None = Field(None, description="share of pixels per class")
    boxes: list[Box] | None = None
    labels: list[str] | None = Field(None, description="the labels at or above the threshold")
    probabilities: dict[str, float] | None = Field(None, description="each label's probability")
    threshold: float | None = None
    task: str | None = Field(None, description="an undescribed output: model.json's task")
    outputs: dict[str, Any] | None = Field(None, description="an undescribed output, raw")


class PredictResponse(BaseModel):
    model_version: str = Field(description="sha256 of the model file")
    results: list[ImageResult]


class ErrorResponse(BaseModel):
    error: str = Field(description="what is wrong with the request, in one line")


class PredictError(ErrorResponse):
    """400 when no image of the request could be read: each one's error is in ``results``."""

    model_version: str
    results: list[ImageResult]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prediction_id: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=10_000, description="the true class (a class name)")


class FeedbackOut(BaseModel):
    prediction_id: str
    label: str
    recorded: bool


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    checks: dict[str, bool]


class ModelCard(BaseModel):
    """What the server runs, from model.json (and verification.json and the run's data.json)."""

    model_config = ConfigDict(extra="allow")
    model_version: str
    model_file: str
    task: str
    output_form: str = Field(description="how its outputs are answered (model.json output.kind)")
    class_names: list[str]
    input: dict[str, Any]
    validation_metrics: dict[str, Any]
    objective: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    data_fingerprint: str | None = None
    verification: dict[str, Any] | None = None
    registry: dict[str, Any] | None = Field(
        None, description="serve --registry: the registry, the champion's version and run"
    )
    serving: dict[str, Any]
