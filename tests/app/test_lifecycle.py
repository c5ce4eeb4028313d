"""The service's one lifecycle: forward-only transitions that readiness and the gate read."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.lifecycle import Lifecycle, ServiceState
from app.registry import ModelRegistry
from tests.app.helpers import started_client, tiny_settings


def test_transitions_only_move_forward() -> None:
    lifecycle = Lifecycle()
    assert lifecycle.state is ServiceState.LOADING and not lifecycle.shutting_down
    lifecycle.loaded(all_ready=True)
    assert lifecycle.state is ServiceState.READY
    lifecycle.drain()
    assert lifecycle.shutting_down and not lifecycle.stopping
    lifecycle.loaded(all_ready=True)  # a late load cannot make a draining service ready
    assert lifecycle.state is ServiceState.DRAINING
    lifecycle.stop()
    lifecycle.drain()
    assert lifecycle.state is ServiceState.STOPPING and lifecycle.stopping


def test_a_failed_bundle_fails_the_service(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student", "ghost"])
    with started_client(settings) as client:
        body = client.get("/health/ready").json()
    assert body["state"] == "failed" and body["status"] == "not_ready"
    assert body["models"]["medpix-student"]["ready"] is True


def test_drain_before_loading_stops_loading(tiny_bundle_dir: Path) -> None:
    registry = ModelRegistry(tiny_settings(tiny_bundle_dir, models=["medpix-student"]))
    registry.lifecycle.drain()
    asyncio.run(registry.load_all())
    assert registry.lifecycle.state is ServiceState.DRAINING
    assert registry.models["medpix-student"].state.value == "loading"  # never started
    assert registry.readiness()[0] is False
