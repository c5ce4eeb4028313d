"""The soak's request mix: what clients really send, each request pre-built as wire bytes with
the statuses it must get.

- valid: real dev images and captions, as JSON (base64) and as multipart forms;
- invalid: the bad inputs clients really send (tests/app/reliability's catalogue), each with
  its status;
- oversized: a body whose Content-Length is over MAX_BODY_BYTES (refused from the header, 413);
- disconnect: the client closes mid-upload, or after sending while the server works on it.
  No answer is read; the server must count 499 (or 200 when it won the race), never 5xx.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from fusionserve.bench.samples import Sample, multipart_body
from fusionserve.bench.wire import Target, request_bytes

GROUPS = ("valid", "invalid", "oversized", "disconnect")
DEFAULT_MIX = {"valid": 0.70, "invalid": 0.20, "oversized": 0.04, "disconnect": 0.06}
JSON = "application/json"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024  # app.settings.Settings.max_body_bytes


@dataclass(frozen=True)
class SoakRequest:
    kind: str
    group: str  # one of GROUPS
    wire: bytes  # the whole request; for a disconnect, what is sent before closing
    expected: frozenset[int]  # statuses it may get (a disconnect: what the server may count)


def _json(target: Target, payload: object, path: str = "/predict") -> bytes:
    return request_bytes(_at(target, path), json.dumps(payload).encode(), JSON)


def _at(target: Target, path: str) -> Target:
    return Target(target.host, target.port, path)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width × height pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def valid_requests(target: Target, sample: Sample) -> list[SoakRequest]:
    payload = {"image": base64.b64encode(sample.image).decode(), "text": sample.text}
    body, content_type = multipart_body(sample)
    ok = frozenset({200})
    return [
        SoakRequest("valid json", "valid", _json(target, payload, "/predict"), ok),
        SoakRequest("valid multipart", "valid", request_bytes(target, body, content_type), ok),
    ]


def invalid_requests(target: Target, sample: Sample) -> list[SoakRequest]:
    image = base64.b64encode(sample.image).decode()
    pdf = base64.b64encode(b"%PDF-1.4 x").decode()
    bomb = base64.b64encode(_png_header(20000, 20000)).decode()
    too_many = {"items": [{"image": "", "text": ""}] * 40}
    cases: list[tuple[str, bytes, int]] = [
        ("empty image", _json(target, {"image": "", "text": "x"}), 422),
        ("pdf", _json(target, {"image": pdf, "text": "x"}), 415),
        ("bad base64", _json(target, {"image": "not base64 at all!", "text": "x"}), 422),
        ("text too long", _json(target, {"image": image, "text": "a" * 6000}), 422),
        ("unknown model", _json(target, {"image": image, "text": "x", "model": "nope"}), 404),
        ("missing text", _json(target, {"image": image}), 422),
        ("truncated image", _json(target, {"image": image[: len(image) // 4], "text": "x"}), 422),
        ("bomb header", _json(target, {"image": bomb, "text": "x"}), 413),
        ("broken json", request_bytes(target, b'{"image": ', JSON), 400),
        ("batch too big", _json(target, too_many, "/predict/batch"), 422),
    ]
    return [SoakRequest(kind, "invalid", wire, frozenset({status})) for kind, wire, status in cases]


def oversized_request(target: Target, sample: Sample, max_body_bytes: int) -> SoakRequest:
    """Declares a body over the limit and sends its start: refused from the header."""
    body = json.dumps({"image": base64.b64encode(sample.image).decode(), "text": "x"}).encode()
    head = (
        f"POST {target.path} HTTP/1.1\r\nhost: {target.host}:{target.port}\r\n"
        f"content-type: {JSON}\r\ncontent-length: {max_body_bytes + 1}\r\n\r\n"
    ).encode()
    return SoakRequest("oversized", "oversized", head + body[:65536], frozenset({413}))


def disconnect_requests(target: Target, sample: Sample) -> list[SoakRequest]:
    """Mid-upload (half the body sent) and before the answer (all sent, then closed)."""
    whole = valid_requests(target, sample)[0].wire
    counted = frozenset({499, 200})  # 200: the answer was written before the close was seen
    return [
        SoakRequest("close mid-upload", "disconnect", whole[: len(whole) // 2], frozenset({499})),
        SoakRequest("close before answer", "disconnect", whole, counted),
    ]


@dataclass(frozen=True)
class RequestMix:
    """Every request the soak may send, by group, and the share of each group."""

    by_group: dict[str, list[SoakRequest]]
    shares: dict[str, float]

    def draw(self, rng: random.Random) -> SoakRequest:
        group = rng.choices(list(self.shares), weights=list(self.shares.values()))[0]
        return rng.choice(self.by_group[group])


def build_mix(
    target: Target,
    samples: Sequence[Sample],
    shares: dict[str, float] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> RequestMix:
    by_group: dict[str, list[SoakRequest]] = {group: [] for group in GROUPS}
    for sample in samples:
        by_group["valid"] += valid_requests(target, sample)
        by_group["disconnect"] += disconnect_requests(target, sample)
    by_group["invalid"] = invalid_requests(target, samples[0])
    by_group["oversized"] = [oversized_request(target, samples[0], max_body_bytes)]
    return RequestMix(by_group, dict(shares or DEFAULT_MIX))
