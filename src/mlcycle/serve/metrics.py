"""Prometheus metrics of the server (``GET /metrics``) and the middleware that counts requests.

Each app has its own registry, so several servers (tests) can live in one process. With
``--workers N`` the counters and histograms are prometheus_client's multiprocess values (files
in ``PROMETHEUS_MULTIPROC_DIR``), summed over the processes when scraped; the model info and
the store gauges are those of the process that answers the scrape.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
SHARED = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics() -> Iterator[str]:
    """A folder for the worker processes' metric files (``PROMETHEUS_MULTIPROC_DIR``, set in
    the environment the workers inherit): a fresh temporary one, removed afterwards, unless
    the user set one."""
    if os.environ.get(SHARED):
        yield os.environ[SHARED]
        return
    folder = tempfile.mkdtemp(prefix="mlcycle-metrics-")
    os.environ[SHARED] = folder
    try:
        yield folder
    finally:
        del os.environ[SHARED]
        shutil.rmtree(folder, ignore_errors=True)


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
        # what is not summed over worker processes: read from this process when scraped
        self.local = CollectorRegistry()
        self.model = Info("mlcycle_serve_model", "The served model", registry=self.local)

    def watch(self, name: str, documentation: str, value: Callable[[], float]) -> None:
        """A gauge read when scraped (the store's written rows, its errors)."""
        self.local.register(Watched(name, documentation, value))

    def render(self) -> tuple[bytes, str]:
        if os.environ.get(SHARED):  # --workers: every process's counts, summed
            summed = CollectorRegistry()
            MultiProcessCollector(summed)
            return generate_latest(summed) + generate_latest(self.local), CONTENT_TYPE_LATEST
        return generate_latest(self.registry) + generate_latest(self.local), CONTENT_TYPE_LATEST


class Watched(Collector):
    """A gauge whose value is read when scraped, from this process only (a Gauge would also
    write a multiprocess file that stays at 0)."""

    def __init__(self, name: str, documentation: str, value: Callable[[], float]) -> None:
        self.name, self.documentation, self.value = name, documentation, value

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation, value=float(self.value()))


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
