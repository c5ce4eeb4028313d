"""Soak: many requests, valid and invalid mixed, against a real `fusionserve serve` process;
reports resident memory at start and end (growth goal: <= 5%) and every unexpected answer.

Not part of CI (minutes of load). Valid requests are real dev images and captions, sent as
multipart and as JSON; invalid ones are the bad inputs clients really send (the catalogue in
tests/app/reliability), each with the status it must get. RSS is read from /proc after a warm-up
(allocator pools, onnxruntime arenas and caches fill during the first requests) and at the end.

    python -m fusionserve.bench.soak --bundle-dir exported --requests 10000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import struct
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from fusionserve.bench.coldstart import free_port, running_server
from fusionserve.bench.samples import Sample, load_dev_samples

WARMUP = 300
SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@dataclass(frozen=True)
class Request:
    kind: str
    body: bytes
    content_type: str
    expected: int
    path: str = "/predict"


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} for pid {pid}")


def _json(payload: object, expected: int, kind: str, path: str = "/predict") -> Request:
    return Request(kind, json.dumps(payload).encode(), "application/json", expected, path)


def _multipart(sample: Sample, text: str) -> Request:
    boundary = "soak-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{sample.name}"'
        f"\r\nContent-Type: {sample.content_type}\r\n\r\n".encode()
        + sample.image
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n'.encode()
        + text.encode()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Request("valid multipart", body, f"multipart/form-data; boundary={boundary}", 200)


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def invalid_requests(sample: Sample) -> list[Callable[[], Request]]:
    image = base64.b64encode(sample.image).decode()
    return [
        lambda: _json({"image": "", "text": "x"}, 422, "empty image"),
        lambda: _json({"image": base64.b64encode(b"%PDF-1.4 x").decode(), "text": "x"}, 415, "pdf"),
        lambda: _json({"image": "not base64 at all!", "text": "x"}, 422, "bad base64"),
        lambda: _json({"image": image, "text": "a" * 6000}, 422, "text too long"),
        lambda: _json({"image": image, "text": "x", "model": "nope"}, 404, "unknown model"),
        lambda: _json({"image": image}, 422, "missing text"),
        lambda: _json(
            {"image": base64.b64encode(sample.image[:2000]).decode(), "text": "x"},
            422,
            "truncated image",
        ),
        lambda: _json(
            {"image": base64.b64encode(_png_header(20000, 20000)).decode(), "text": "x"},
            413,
            "bomb header",
        ),
        lambda: Request("broken json", b'{"image": ', "application/json", 400),
        lambda: _json(
            {"items": [{"image": "", "text": ""}] * 40}, 422, "batch too big", "/predict/batch"
        ),
    ]


def build_requests(
    samples: list[Sample], count: int, invalid_share: float, seed: int
) -> list[Request]:
    rng = random.Random(seed)
    requests = []
    for i in range(count):
        sample = samples[i % len(samples)]
        if rng.random() < invalid_share:
            requests.append(rng.choice(invalid_requests(sample))())
        elif i % 2:
            requests.append(_multipart(sample, sample.text))
        else:
            payload = {"image": base64.b64encode(sample.image).decode(), "text": sample.text}
            requests.append(_json(payload, 200, "valid json"))
    return requests


async def drive(base_url: str, requests: list[Request], concurrency: int) -> Counter[str]:
    """Closed loop: `concurrency` clients; returns counts of (kind, status) and mismatches."""
    outcome: Counter[str] = Counter()
    queue = list(reversed(requests))
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def worker() -> None:
            while queue:
                req = queue.pop()
                try:
                    response = await client.post(
                        req.path, content=req.body, headers={"content-type": req.content_type}
                    )
                    status = response.status_code
                except httpx.TransportError as exc:
                    status = 0
                    outcome[f"transport error {type(exc).__name__}"] += 1
                outcome[f"status {status}"] += 1
                if status != req.expected:
                    outcome[f"UNEXPECTED {req.kind}: {status} (want {req.expected})"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcome


def run(args: argparse.Namespace) -> dict[str, object]:
    samples = load_dev_samples(args.task_set, Path(args.datasets), limit=64)
    requests = build_requests(samples, args.requests, args.invalid_share, args.seed)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "fusionserve.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--bundle-dir", args.bundle_dir, "--log-level", "warning",
    ]  # fmt: skip
    with running_server(cmd, base_url) as server:
        rss_ready = rss_mb(server.pid)
        started = time.perf_counter()
        warm = asyncio.run(drive(base_url, requests[:WARMUP], args.concurrency))
        rss_start = rss_mb(server.pid)
        soak = asyncio.run(drive(base_url, requests[WARMUP:], args.concurrency))
        wall_s = time.perf_counter() - started
        rss_end, rss_peak = rss_mb(server.pid), rss_mb(server.pid, "VmHWM")
    total = warm + soak
    unexpected = {k: v for k, v in total.items() if k.startswith("UNEXPECTED")}
    return {
        "requests": len(requests),
        "invalid_share": args.invalid_share,
        "concurrency": args.concurrency,
        "wall_s": round(wall_s, 1),
        "rss_mb": {
            "ready": round(rss_ready, 1),
            "start (after warm-up)": round(rss_start, 1),
            "end": round(rss_end, 1),
            "peak": round(rss_peak, 1),
        },
        "rss_growth_pct": round(100.0 * (rss_end - rss_start) / rss_start, 2),
        "statuses": {k: v for k, v in sorted(total.items()) if k.startswith("status")},
        "transport_errors": sum(v for k, v in total.items() if k.startswith("transport")),
        "unexpected": unexpected,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle-dir", required=True)
    parser.add_argument("--datasets", default=str(SHARED_DATASETS))
    parser.add_argument("--task-set", default="medpix", choices=["medpix", "wound"])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--invalid-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the report (JSON) here")
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if not report["unexpected"] and not report["transport_errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
