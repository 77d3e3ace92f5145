"""Prometheus metrics, kept in a registry of the app's own (prometheus-client).

    http_requests_total{method, route, status}          requests answered
    http_request_duration_seconds{method, route}        time to the end of the response
    http_requests_in_progress                           requests being served now
    db_command_duration_seconds{command, outcome}       every database command (PyMongo
                                                        command monitoring), outcome ok/failed
    event_stream_clients                                open Server-Sent Event streams

`route` is the route's template (`/chat/sessions/{session_id}`), never the raw path, so ids do
not become label values; a path that matches no route is counted as `unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pymongo import monitoring
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "http_request_duration_seconds",
            "Time from a request's headers to the end of its response",
            ["method", "route"],
            registry=self.registry,
        )
        self.in_progress = Gauge("http_requests_in_progress", "HTTP requests being served", registry=self.registry)
        self.db_command_seconds = Histogram(
            "db_command_duration_seconds",
            "Database commands, by command name and outcome (ok or failed)",
            ["command", "outcome"],
            buckets=DB_BUCKETS,
            registry=self.registry,
        )
        self.command_listener = DatabaseCommandMetrics(self.db_command_seconds)
        self.event_stream_clients = Gauge(
            "event_stream_clients", "Open Server-Sent Event streams (user and session streams)", registry=self.registry
        )

    def count_event_streams(self, count: Callable[[], int]) -> None:
        """Read the number of open streams at each scrape."""
        self.event_stream_clients.set_function(count)


class DatabaseCommandMetrics(monitoring.CommandListener):
    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.histogram.labels(event.command_name, "ok").observe(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.histogram.labels(event.command_name, "failed").observe(event.duration_micros / 1e6)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (known once routing ran)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            self.metrics.in_progress.dec()
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.request_seconds.labels(scope["method"], route).observe(time.perf_counter() - started)
