"""A client that closes its socket is not a server error, wherever its request was: mid-upload,
queued in the batcher, or in the model's run. Each is one access line with its request id and
status 499 `client_closed`, no trace and nothing at ERROR, counted under 499 (never 5xx, never a
rejection); a queued item is dropped without running, and the server serves on."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.app.helpers import MEDPIX_IMAGE, MEDPIX_TEXT, b64, tiny_settings
from tests.app.live_server import live_server, raw_connection
from tests.app.observability.scrape import parse, total
from tests.app.reliability.serving import GatedModel

MODEL = "medpix-student"
BODY = json.dumps({"image": b64(MEDPIX_IMAGE.read_bytes()), "text": MEDPIX_TEXT, "model": MODEL})


JSON, FORM = "application/json", "multipart/form-data; boundary=b"


def request_head(request_id: str, length: int, kind: str = JSON) -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {length}\r\nX-Request-ID: {request_id}\r\n\r\n"
    ).encode()


def statuses(base: str) -> dict[str, float]:
    samples = parse(httpx.get(f"{base}/metrics").text)
    name = "fusionserve_http_requests_total"
    found = {lab for (n, lab) in samples if n == name}
    codes = {dict(lab)["status"] for lab in found if dict(lab)["route"] == "/predict"}
    return {code: total(samples, name, route="/predict", status=code) for code in codes}


def queue_depth(base: str) -> float:
    samples = parse(httpx.get(f"{base}/metrics").text)
    return total(samples, "fusionserve_queue_depth", model=MODEL)


def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def served(tiny_bundle_dir: Path) -> Iterator[tuple[str, GatedModel]]:
    app = create_app(tiny_settings(tiny_bundle_dir, models=[MODEL], max_delay_ms=0.0))
    with live_server(app) as base:
        gated = GatedModel.install(app, MODEL)
        gated.gate.set()  # open unless a test holds it
        yield base, gated


def closes_after(base: str, request_id: str, head: bytes, body: bytes) -> socket.socket:
    sock = raw_connection(base)
    sock.sendall(head + body)
    return sock


def assert_one_quiet_line(records: list[logging.LogRecord], request_id: str) -> None:
    mine = [r for r in records if getattr(r, "request_id", None) == request_id]
    assert len(mine) == 1, [r.getMessage() for r in mine]
    fields = getattr(mine[0], "fields", {})
    assert (fields["status"], fields.get("error_code")) == (499, "client_closed")
    assert mine[0].levelno == logging.INFO
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_socket_closed_mid_upload_is_499(
    served: tuple[str, GatedModel], caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = served
    before = statuses(base)
    with caplog.at_level(logging.INFO):
        for request_id, kind in (("mid-json", JSON), ("mid-form", FORM)):
            head = request_head(request_id, 100_000, kind)
            sock = closes_after(base, request_id, head, b"--b\r\n")
            time.sleep(0.3)  # the app is reading the body
            sock.close()
        wait_for(lambda: statuses(base).get("499", 0) - before.get("499", 0) == 2)
    after = statuses(base)
    assert after.get("500", 0) == before.get("500", 0)
    for request_id in ("mid-json", "mid-form"):
        assert_one_quiet_line(caplog.records, request_id)


def test_a_socket_closed_while_the_batcher_has_the_item_is_499(
    served: tuple[str, GatedModel], caplog: pytest.LogCaptureFixture
) -> None:
    """One request in the model's run (the gate holds it), one queued behind it: both clients
    leave. The queued item never runs; the running one's answer is dropped."""
    base, gated = served
    before = statuses(base)
    runs_before = len(gated.sizes)
    gated.gate.clear()
    gated.started.clear()
    with caplog.at_level(logging.INFO):
        running = closes_after(base, "in-run", request_head("in-run", len(BODY)), BODY.encode())
        assert gated.started.wait(20), "the model never started the first item"
        queued = closes_after(base, "in-queue", request_head("in-queue", len(BODY)), BODY.encode())
        wait_for(lambda: queue_depth(base) == 1)  # queued behind the running batch
        queued.close()
        running.close()
        wait_for(lambda: statuses(base).get("499", 0) - before.get("499", 0) == 2)
        threading.Timer(0.1, gated.gate.set).start()
        wait_for(lambda: len(gated.sizes) > runs_before)
        # the server serves on: a normal request after both
        answer = httpx.post(
            f"{base}/predict", content=BODY, headers={"content-type": JSON}, timeout=20
        )
    assert answer.status_code == 200, answer.text
    assert gated.sizes[runs_before:] == [1, 1], "the queued item ran although its client left"
    after = statuses(base)
    assert after.get("500", 0) == before.get("500", 0)
    for request_id in ("in-run", "in-queue"):
        assert_one_quiet_line(caplog.records, request_id)


def test_client_closed_is_not_a_rejection(served: tuple[str, GatedModel]) -> None:
    base, _ = served
    samples = parse(httpx.get(f"{base}/metrics").text)
    assert total(samples, "fusionserve_http_requests_total", status="499") >= 1
    assert total(samples, "fusionserve_rejections_total", reason="invalid_input") == 0
