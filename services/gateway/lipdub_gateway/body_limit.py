"""Refuse an over-limit request body while it arrives (413), before the framework spools it
to disk: a client streaming a 50 GB file to a 8 GB limit is cut off at 8 GB, whatever its
Content-Length says (or if it sends none)."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int | None]) -> None:
        """`limit_for(scope)`: the most bytes this request may send, or None for no limit."""
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge  # stops the reading, wherever it is
            return message

        # The framework may turn the interruption into an error response of its own (a form
        # parser's 400, say): once the limit is passed, whatever it answers becomes our 413.
        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if not exceeded:
                await send(message)
            elif not replaced:
                replaced = True
                await self._too_large(scope, limit, send)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            if not replaced:
                await self._too_large(scope, limit, send)

    @staticmethod
    async def _too_large(scope: Scope, limit: int, send: Send) -> None:
        body = json.dumps({  # the same problem-details shape as every other error
            "type": "https://lipdub.dev/problems/upload_too_large",
            "title": "Upload too large", "status": 413,
            "detail": f"The request body passed the {limit}-byte limit.",
            "code": "upload_too_large", "instance": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
