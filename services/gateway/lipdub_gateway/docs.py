"""The API documentation pages work on a closed network: Swagger UI and ReDoc come from a
package (fastapi-offline) and are served by the gateway itself, not from a CDN. The pages
also carry a content security policy that lets them load nothing from elsewhere (ReDoc's
footer would otherwise fetch its logo from the internet): a studio's network may have no
route out, and its docs pages should not reach out if it does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

DOCS_PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
# Inline scripts and styles: FastAPI's pages start Swagger UI/ReDoc with an inline script.
POLICY = (b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
          b"'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' "
          b"blob:; connect-src 'self'")

Message = dict[str, Any]


class DocsPolicy:
    """ASGI middleware: the policy header on the documentation pages."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCS_PAGES:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"content-security-policy", POLICY)]
            await send(message)

        await self.app(scope, receive, with_policy)


def documented_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose /docs and /redoc need nothing but the gateway."""
    app = FastAPIOffline(**kwargs)
    app.add_middleware(DocsPolicy)
    return app
