"""The FastAPI app: endpoints, token check, error shapes and the OpenAPI description.

Every error is JSON ``{"error": "..."}``; bad input is a 4xx (``handlers``), never a 5xx.
"""

from __future__ import annotations

import hmac
import os
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from mlcycle.serve.handlers import add_handlers, input_error, predict_openapi, stopped, unexpected
from mlcycle.serve.inputs import InputError, body_kind
from mlcycle.serve.limits import BodyLimit
from mlcycle.serve.metrics import RequestMetrics
from mlcycle.serve.micro_batcher import BatcherStopped
from mlcycle.serve.model import ServedModel
from mlcycle.serve.page import page as page_html
from mlcycle.serve.schemas import (
    ErrorResponse,
    FeedbackIn,
    FeedbackOut,
    Health,
    ModelCard,
    PredictError,
    PredictResponse,
    Ready,
)
from mlcycle.serve.service import Service, Settings
from mlcycle.serve.store import PredictionStore

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "token missing or wrong",
        413: "body over --max-bytes, or more than --max-images images",
        415: "neither multipart/form-data nor application/json",
        422: "fields of the wrong type or missing",
    }.items()
}


BEARER = HTTPBearer(auto_error=False, description="the server's --token, when it has one")


def token_check(token: str) -> list[Any]:
    """The dependency requiring ``Authorization: Bearer TOKEN``; none without a token (a
    dependency costs ~10% of a small request). Async: a plain def would run in a thread."""

    async def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise InputError(401, "unauthorized", "missing or wrong bearer token")

    return [Depends(check)]


def bearer_ok(scope: Scope, token: str) -> bool:
    """Whether ``Authorization: Bearer TOKEN`` is the server's token (as ``token_check``)."""
    value = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, given = value.partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    return hmac.compare_digest(given.encode(), token.encode())


class PredictRoute:
    """``POST /v1/predict`` answered straight from ASGI, inside the body limit and the request
    metrics: FastAPI's routing, dependencies and exception middleware cost more per image
    than the model does. Errors get the answers ``handlers`` gives them; every other request
    goes on to FastAPI, where ``/v1/predict`` stays declared for the OpenAPI description."""

    def __init__(self, app: ASGIApp, service: Service, token: str | None) -> None:
        self.app, self.service, self.token = app, service, token
        self.served_by = {"x-mlcycle-worker": str(os.getpid())}  # which of --workers answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            response = await self.predict(scope, receive)
        except InputError as exc:
            response = input_error(exc, self.service.metrics)
        except BatcherStopped:
            response = stopped()
        except HTTPException:  # the body limit's, answered by BodyLimit
            raise
        except Exception as exc:
            response = unexpected(exc)
        await response(scope, receive, send)

    async def predict(self, scope: Scope, receive: Receive) -> Response:
        start = time.perf_counter()
        if self.token is not None and not bearer_ok(scope, self.token):
            raise InputError(401, "unauthorized", "missing or wrong bearer token")
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        kind = body_kind(content_type)
        body = await Request(scope, receive).body()
        status, payload = await self.service.predict(kind, content_type, body, start)
        return JSONResponse(payload, status_code=status, headers=self.served_by)


PREDICT = "/v1/predict"


def add_model_routes(app: FastAPI, service: Service, auth: list[Any]) -> None:
    """``POST /v1/predict`` (declared here, answered by :class:`PredictRoute`) and
    ``POST /v1/feedback`` (behind the token, when there is one)."""

    @app.post(
        PREDICT,
        response_model=PredictResponse,
        responses={
            **ERRORS,
            400: {"model": PredictError, "description": "no image (row) readable"},
        },
        dependencies=auth,
        openapi_extra=predict_openapi(),
        summary="Predict one or many images, or table rows",
    )
    async def predict(request: Request) -> Response:
        """Multipart files under ``files``, or JSON ``{"images": [{"name", "data"}]}`` with
        base64 data. A table model: JSON ``{"rows": [{column: value}]}`` (or a list of rows),
        or CSV files under ``files``. 200 when at least one image (row) was answered: an
        unreadable one gets ``{"name", "error"}`` in its place. 400 when none was."""
        return await PredictRoute(app, service, None).predict(request.scope, request.receive)

    @app.post(
        "/v1/feedback",
        response_model=FeedbackOut,
        responses={**ERRORS, 400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
        dependencies=auth,
        summary="Record the true label of a prediction",
    )
    async def feedback(body: FeedbackIn) -> FeedbackOut:
        """404 for an unknown prediction_id; 400 when the model answers classes and the label
        is not one of them."""
        await service.feedback(body.prediction_id, body.label)
        return FeedbackOut(prediction_id=body.prediction_id, label=body.label, recorded=True)


def add_status_routes(app: FastAPI, service: Service) -> None:
    """The model card, health, readiness, metrics and the web page (no token)."""

    @app.get("/v1/model", response_model=ModelCard, summary="The model card")
    async def model_info() -> Response:
        return JSONResponse(service.card)

    @app.get("/health", response_model=Health, summary="The process is up")
    async def health() -> Health:
        return Health(status="ok")

    @app.get(
        "/ready",
        response_model=Ready,
        responses={503: {"model": Ready}},
        summary="Model loaded and store writer alive",
    )
    async def ready() -> Response:
        checks = service.ready()
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
        summary="Prometheus metrics",
    )
    async def metrics() -> Response:
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, summary="A web page to try the model")
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html(service.card))


def create_app(model: ServedModel, store: PredictionStore, settings: Settings) -> FastAPI:
    """The server's app; its lifespan starts the batcher and the store writer and, at shutdown
    (after the last request), drains both."""
    service = Service(model, store, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="mlcycle model server",
        version=model.version[:12],
        description=f"Serves the {model.task} model {model.path.name} (ONNX Runtime).",
        lifespan=lifespan,
    )
    app.state.service = service
    add_model_routes(app, service, token_check(settings.token) if settings.token else [])
    add_status_routes(app, service)
    add_handlers(app, service.metrics)
    paths = {route.path for route in app.routes if hasattr(route, "methods")}
    app.add_middleware(PredictRoute, service=service, token=settings.token)  # inside the two
    app.add_middleware(BodyLimit, max_bytes=settings.max_bytes, metrics=service.metrics)
    app.add_middleware(RequestMetrics, metrics=service.metrics, paths=paths)  # the outermost
    return app
