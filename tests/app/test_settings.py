"""Settings come from FUSIONSERVE_* variables; comma lists; invalid values are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("FUSIONSERVE_"):
            monkeypatch.delenv(key)
    s = Settings()
    assert s.bundle_dir == Path("exported") and s.models == []
    assert s.providers == ["CPUExecutionProvider"] and s.precision == "fp32"
    assert (s.max_batch_size, s.max_delay_ms, s.queue_size) == (0, 2.0, 256)  # 0 = auto
    assert s.max_body_bytes == 10 * 1024 * 1024 and s.max_text_chars == 5000
    assert s.api_key is None and s.cors_origins == [] and s.default_task_set == "medpix"


def test_environment_and_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSIONSERVE_MODELS", "medpix-student, wound-student")
    monkeypatch.setenv("FUSIONSERVE_PROVIDERS", "CUDAExecutionProvider,CPUExecutionProvider")
    monkeypatch.setenv("FUSIONSERVE_MAX_DELAY_MS", "0")
    monkeypatch.setenv("FUSIONSERVE_PRECISION", "int8")
    monkeypatch.setenv("FUSIONSERVE_API_KEY", "")
    monkeypatch.setenv("FUSIONSERVE_CORS_ORIGINS", "https://a.example")
    s = Settings()
    assert s.models == ["medpix-student", "wound-student"]
    assert s.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert s.max_delay_s == 0.0 and s.precision == "int8"
    assert s.api_key is None and s.cors_origins == ["https://a.example"]


@pytest.mark.parametrize(
    "key,value",
    [("PRECISION", "fp16"), ("MAX_BATCH_SIZE", "-1"), ("GRAPH_OPTIMIZATION", "max"), ("PORT", "x")],
)
def test_invalid_values_refused(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(f"FUSIONSERVE_{key}", value)
    with pytest.raises(ValidationError):
        Settings()
