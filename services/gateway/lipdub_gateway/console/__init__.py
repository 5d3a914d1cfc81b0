"""The review console: server-rendered pages at /console for a tenant's reviewers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles


def install_console(app: FastAPI) -> None:
    from lipdub_gateway.console.routes import SignIn, router

    async def sign_in(_request: Request, _exc: Exception) -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303)

    app.include_router(router)
    app.add_exception_handler(SignIn, sign_in)
    app.mount("/console/static", StaticFiles(directory=Path(__file__).parent / "static"),
              name="console-static")
