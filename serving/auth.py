"""Bearer-token guard for ``/admin`` and everything under it, checked before routing.

A pure ASGI middleware, so no route (not even a 404 or 405) answers an unauthenticated
caller under the prefix: no token -> 401, a wrong token -> 403. Tokens are compared in
constant time (SHA-256 of both sides through :func:`hmac.compare_digest`, so not even
the length leaks) against every configured token, and never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from starlette.types import ASGIApp, Receive, Scope, Send

ADMIN_PREFIX = "/admin"
_SLASHES = re.compile(r"/{2,}")


def normalise_path(path: str) -> str:
    """``path`` with doubled slashes folded (``//admin//x`` -> ``/admin/x``)."""
    return _SLASHES.sub("/", path)


def is_admin_path(path: str, prefix: str = ADMIN_PREFIX) -> bool:
    """``/admin``, ``/admin/`` and anything below, also when written with doubled slashes."""
    path = normalise_path(path)
    return path == prefix or path.startswith(prefix + "/")


def token_matches(presented: bytes, accepted: list[bytes]) -> bool:
    """Constant-time membership test; every accepted token is compared, always."""
    digest = hashlib.sha256(presented).digest()
    found = False
    for token in accepted:
        found |= hmac.compare_digest(digest, hashlib.sha256(token).digest())
    return found


class AdminAuthMiddleware:
    """Refuse every request under ``prefix`` that lacks one of ``tokens``."""

    def __init__(self, app: ASGIApp, tokens: list[bytes], prefix: str = ADMIN_PREFIX) -> None:
        self.app = app
        self.tokens = tokens
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_admin_path(scope["path"], self.prefix):
            refusal = self._refusal(scope)
            if refusal is not None:
                await _send_json(send, *refusal)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        return bearer_refusal(header, self.tokens)


def bearer_refusal(header: bytes | None, tokens: list[bytes]) -> tuple[int, str, str] | None:
    """Why an ``Authorization`` header is refused: (status, code, message); None = accepted.

    Also used by the few admin actions that live outside ``/admin`` (``POST /references``).
    """
    if header is None:
        return 401, "unauthorized", "this path needs 'Authorization: Bearer <admin token>'"
    scheme, _, token = header.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return 401, "unauthorized", "the Authorization header must be 'Bearer <admin token>'"
    if not token_matches(token, tokens):
        return 403, "forbidden", "the bearer token is not an admin token"
    return None


async def _send_json(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="driftline-admin"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
