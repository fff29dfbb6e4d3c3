"""Request-body size limits for every route, enforced before a handler parses anything.

FastAPI reads a whole body into memory to validate it, so without a bound a single
oversized ``POST /drift/detect`` or ``/admin/*`` call could take the replica's memory.
This pure ASGI middleware refuses a body over its path's limit with a 413 JSON answer:
at once when ``Content-Length`` declares it, else as soon as the streamed bytes pass it.

Routes that bound their own body (``/predict`` records the refusal as an
InferenceEvent) are given ``None`` and passed through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import normalise_path
from serving.settings import ServingSettings


class BodyLimitMiddleware:
    """413 for a body over ``limits.get(path, default)`` bytes; ``None`` = route's own."""

    def __init__(
        self, app: ASGIApp, default: int, limits: Mapping[str, int | None] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits or {})

    def limit_for(self, path: str) -> int | None:
        """The byte limit of ``path`` (slashes folded); ``None`` if the route has its own."""
        return self.limits.get(normalise_path(path).rstrip("/") or "/", self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, f"body of {int(declared)} bytes; at most {limit}")
            return
        received = 0
        started = refused = False

        async def counting_receive() -> Message:
            # Answering here, not raising: FastAPI turns any error while it reads a body
            # into a 400. The route then sees a disconnect and whatever it sends is dropped.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(send, f"body exceeds {limit} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"error": "body_too_large", "message": message, "location": "body"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def body_limits(settings: ServingSettings) -> dict[str, int | None]:
    """Per-path limits from the settings; every other route gets ``max_body_bytes``.

    Datasets (``/references``, ``/drift/detect``'s ``current_data``) may be as large as
    ``dataset_max_bytes``; ``/predict`` bounds its own body (and records the refusal).
    """
    return {
        "/predict": None,
        "/references": settings.dataset_max_bytes,
        "/drift/detect": settings.dataset_max_bytes,
    }
