"""Liveness never depends on models; readiness is 200 only when every model is ready."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_live(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}


def test_ready_lists_every_model(client: TestClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["reasons"] == [] and body["draining"] is False
    assert body["state"] == "ready"
    assert all(m["ready"] for m in body["models"].values())
    assert len(body["models"]) == 3
