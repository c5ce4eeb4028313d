"""Client-side errors: every failure carries a stable `code`, like the server's error envelope,
so scripts (and `fusionserve predict`'s per-case records) can branch on it without parsing text."""

from __future__ import annotations


class FusionServeError(Exception):
    """Base of every error the client raises."""

    code: str = "client_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ApiError(FusionServeError):
    """The server answered with an error: its HTTP status, stable code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code)
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class ConnectionFailed(FusionServeError):
    """The server could not be reached (refused, reset, DNS)."""

    code = "connection_error"


class RequestTimedOut(FusionServeError):
    """No answer within the client's timeout."""

    code = "timeout"


class InvalidInput(FusionServeError):
    """The caller's image argument could not be read or encoded (checked before sending)."""

    code = "invalid_input"
