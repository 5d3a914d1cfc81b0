"""FastAPI application factory: the gateway's state, middleware, error handlers and one
router per resource (routes/). Run with
    uvicorn --factory lipdub_gateway.app:create_app   (or `lipdub serve`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lipdub.config import Settings, get_settings
from lipdub.db.session import upgrade
from lipdub.jobs.manifest import MAX_MANIFEST_BYTES
from lipdub_gateway.body_limit import BodyLimit
from lipdub_gateway.console import install_console
from lipdub_gateway.docs import documented_app
from lipdub_gateway.errors import install_error_handlers
from lipdub_gateway.metrics import RequestTimer
from lipdub_gateway.routes import batches, health, identities, jobs, reviews, uploads
from lipdub_gateway.routes.uploads import FORM_OVERHEAD_BYTES
from lipdub_gateway.state import Gateway

JSON_BODY_LIMIT_BYTES = 1024 * 1024  # jobs, identities: far more than any real request


def create_app(settings: Settings | None = None, run_jobs: bool = True) -> FastAPI:
    """`run_jobs=False`: accept jobs but run none here (the in-process executor is off)."""
    settings = settings or get_settings()
    state = Gateway.build(settings, run_jobs)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        upgrade(settings.database_url)  # migrations run on start
        if state.executor is not None:
            state.executor.start()
        yield
        if state.executor is not None:
            state.executor.stop()

    app = documented_app(title="LipDub", version="1", lifespan=lifespan)  # docs offline
    app.state.gateway = state
    install_error_handlers(app)

    def body_limit(scope: dict) -> int | None:
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return None
        if scope["path"] == "/v1/uploads":  # the file plus the form's own framing
            return settings.max_upload_bytes + FORM_OVERHEAD_BYTES
        if scope["path"] == "/v1/batches":  # a manifest: a little over its own limit, so
            return MAX_MANIFEST_BYTES + 1024  # that one just over it gets the specific 422
        return JSON_BODY_LIMIT_BYTES

    app.add_middleware(RequestTimer, histogram=state.latency)
    app.add_middleware(BodyLimit, limit_for=body_limit)
    for module in (health, jobs, reviews, uploads, identities, batches):
        app.include_router(module.router)
    install_console(app)
    return app
