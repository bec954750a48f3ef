"""Prometheus metrics of the server (``GET /metrics``) and the middleware that counts requests.

Each app has its own registry, so several servers (tests) can live in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """The server's counters and histograms."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: half the text, nothing a dashboard uses
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mlcycle_serve_requests",
            "HTTP requests by endpoint, method and status code",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mlcycle_serve_request_duration_seconds",
            "Time from request to response, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.images = Counter(
            "mlcycle_serve_images_predicted",
            "Images answered, by what each counts for (its class; masks: the largest share; "
            "boxes: the best box's class; labels: the labels found)",
            ["class"],
            registry=r,
        )
        self.rejected = Counter(
            "mlcycle_serve_rejected_inputs",
            "Requests or images refused, by reason",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "mlcycle_serve_batch_size",
            "Images per model call",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model = Info("mlcycle_serve_model", "The served model", registry=r)

    def watch(self, name: str, documentation: str, value: Callable[[], float]) -> None:
        """A gauge read when scraped (the store's written rows, its errors)."""
        Gauge(name, documentation, registry=self.registry).set_function(value)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware: counts every HTTP request by endpoint and status and times it.

    Paths not served count as ``other``, so random URLs cannot blow up the label set."""

    def __init__(self, app: ASGIApp, metrics: Metrics, paths: set[str]) -> None:
        self.app, self.metrics, self.paths = app, metrics, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = scope["path"] if scope["path"] in self.paths else "other"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
