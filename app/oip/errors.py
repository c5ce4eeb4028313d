"""OIP v2 errors: `{"error": "<message>"}` with the status /predict would use.

The service renders every error once as `{"error": {"code", "message"}}`; for /v2 paths this
outermost middleware reshapes that envelope into the protocol's, moving the stable code to the
`X-Error-Code` header. Errors raised anywhere (body limit, API key, drain, unknown routes,
validation) are covered, and the metrics and access log, inside it, still read the code.
"""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ServiceError

ERROR_CODE_HEADER = "X-Error-Code"


class UnknownVersion(ServiceError):
    """The model exists, but not in the requested version (its bundle's sha256 prefix)."""

    status = 404
    code = "unknown_version"


def is_oip_path(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def reshape(body: bytes) -> tuple[bytes, str]:
    """The service's error envelope → (the protocol's, its code); anything else unchanged."""
    try:
        data = json.loads(body)
        message, code = data["error"]["message"], data["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return body, ""
    return json.dumps({"error": str(message)}).encode("utf-8"), str(code)


class OipErrorShape:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_oip_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        body = bytearray()

        async def shaping_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                json_error = message["status"] >= 400 and headers.get(
                    "content-type", ""
                ).startswith("application/json")
                if json_error:
                    held = message  # wait for the whole (small) error body
                    return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            new_body, code = reshape(bytes(body))
            headers = MutableHeaders(scope=held)
            headers["content-length"] = str(len(new_body))
            if code:
                headers[ERROR_CODE_HEADER] = code
            await send(held)
            await send({"type": "http.response.body", "body": new_body})

        await self.app(scope, receive, shaping_send)
