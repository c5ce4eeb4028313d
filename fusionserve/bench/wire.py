"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load generator.

Why not httpx: on this project's 2-core machines the async httpx client spent 6-9 ms of CPU per
request (more than the server it measured) and, starved of CPU, answered its own callers out
of order — at c=32 it added over a second to the p99 that the server never saw (bench/RESULTS.md,
issue 26). This client sends pre-built request bytes and reads the status line, the headers and
a Content-Length (or chunked) body: about 0.2 ms of CPU per request, first come first served.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Target:
    """Where requests go: host, port and the request target (path + query)."""

    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only plain http:// URLs are supported, got {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname, parts.port or 80, path)


def request_bytes(target: Target, body: bytes | None, content_type: str = "") -> bytes:
    """One whole request, built once and sent as is (GET without a body)."""
    method = "GET" if body is None else "POST"
    head = f"{method} {target.path} HTTP/1.1\r\nhost: {target.host}:{target.port}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    head += f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    close: bool  # the server asked to close the connection


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers expected
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """Status, body and whether the connection closes after it."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    body = await (_read_chunked(reader) if chunked else reader.readexactly(length))
    return Answer(status, body, close)


class Connection:
    """One keep-alive connection, reopened after the server closes it."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> Answer:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.target.host, self.target.port
            )
        try:
            self._writer.write(request)
            answer = await read_answer(self._reader)
        except BaseException:
            self.close()
            raise
        if answer.close:
            self.close()
        return answer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
