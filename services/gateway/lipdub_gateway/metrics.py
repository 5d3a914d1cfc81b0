"""Request latency per route, as a plain ASGI middleware (Starlette's BaseHTTPMiddleware
costs a task group and a body stream per request, which showed in profiles of POST
/v1/jobs)."""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Receive, Scope, Send


class RequestTimer:
    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")  # set by the router on this same scope
            self.histogram.labels(getattr(route, "path", "other")).observe(
                time.perf_counter() - started)
