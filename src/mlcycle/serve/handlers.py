"""Exception handlers (every error as ``{"error": "..."}``) and the OpenAPI text of the one
endpoint whose body FastAPI cannot describe by itself."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from mlcycle.serve.inputs import InputError, describe, is_json_syntax
from mlcycle.serve.metrics import Metrics
from mlcycle.serve.micro_batcher import BatcherStopped
from mlcycle.serve.schemas import PredictJSON, RowsJSON

log = logging.getLogger("mlcycle.serve")
REASONS = {401: "unauthorized", 404: "not_found", 405: "method", 413: "too_large"}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def input_error(exc: InputError, metrics: Metrics) -> JSONResponse:
    """The answer to a refused request (counted by its reason)."""
    metrics.rejected.labels(exc.reason).inc()
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error(exc.status, exc.message, headers)


def stopped() -> JSONResponse:
    return error(503, "the server is shutting down; retry on another instance")


def unexpected(exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error(500, f"internal error ({type(exc).__name__}); see the server log")


def add_handlers(app: FastAPI, metrics: Metrics) -> None:
    async def on_input(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InputError)
        return input_error(exc, metrics)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        metrics.rejected.labels("bad_json").inc()
        return error(400 if is_json_syntax(errors) else 422, describe(errors, skip=("body",)))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no endpoint {request.url.path[:200]}"
        elif exc.status_code == 405:
            message = f"{request.method[:20]} is not allowed on {request.url.path[:200]}"
        if exc.status_code in REASONS:
            metrics.rejected.labels(REASONS[exc.status_code]).inc()
        return error(exc.status_code, message, exc.headers)

    async def on_stopped(_request: Request, _exc: Exception) -> JSONResponse:
        return stopped()

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return unexpected(exc)

    app.add_exception_handler(InputError, on_input)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(BatcherStopped, on_stopped)
    app.add_exception_handler(Exception, on_unexpected)
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]


def predict_openapi() -> dict[str, Any]:
    """``POST /v1/predict``'s two body forms (the handler reads the body itself)."""
    multipart = {
        "type": "object",
        "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
        "required": ["files"],
    }
    json_body = {
        "oneOf": [
            {"$ref": "#/components/schemas/PredictJSON"},
            {"$ref": "#/components/schemas/RowsJSON"},
        ]
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": multipart},
                "application/json": {"schema": json_body},
            },
        }
    }


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the models only ``predict_openapi`` refers to."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for body in (PredictJSON, RowsJSON):
            extra = body.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(extra.pop("$defs", {}))
            components[body.__name__] = extra
        app.openapi_schema = schema
    return app.openapi_schema
