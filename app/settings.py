"""One typed settings object for the whole service, read from `FUSIONSERVE_*` environment variables.

Every knob is documented in the README ("Settings"). Comma lists (MODELS,
PROVIDERS, CORS_ORIGINS) are plain comma-separated strings in the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]
FAULTS_FLAG = "FUSIONSERVE_TEST_ONLY_ALLOW_FAULTS"  # read from the environment only


def split_commas(value: object) -> object:
    """'a, b,,c' → ['a', 'b', 'c'] (environment comma lists); anything else unchanged."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Service configuration; defaults suit one CPU container serving `exported/`."""

    model_config = SettingsConfigDict(env_prefix="FUSIONSERVE_", extra="ignore")

    # Bundles and process
    bundle_dir: Path = Path("exported")
    models: CommaList = Field(default_factory=list)  # empty = every bundle under bundle_dir
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)

    # Runtime
    providers: CommaList = Field(default_factory=lambda: ["CPUExecutionProvider"])
    precision: Literal["fp32", "int8"] = "fp32"
    intra_op_threads: int = Field(default=0, ge=0)  # 0 = auto: half the cores, at least 1
    inter_op_threads: int = Field(default=0, ge=0)
    concurrent_runs: int = Field(default=0, ge=0)  # per model; 0 = auto: 2 on CPU with auto intra
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    io_binding: Literal["auto", "on", "off"] = "auto"  # auto = on for CUDA/TensorRT providers

    # Batching and deadlines
    max_batch_size: int = Field(default=0, ge=0)  # 0 = auto: 4 on a CPU, 32 on a GPU
    max_delay_ms: float = Field(default=2.0, ge=0.0)
    queue_size: int = Field(default=256, ge=1)
    request_timeout_s: float = Field(default=30.0, gt=0.0)
    preprocess_workers: int = Field(default=2, ge=1)

    # Faults and hot-swap (app.run_guard, app.bundle_watch). A run longer than RUN_TIMEOUT_S
    # stalls its model (0 = auto: 50 × the bundle's warm-up time, at least 10 s); a model still
    # stalled STALL_GRACE_S later fails liveness. After MAX_CONSECUTIVE_FAILURES failed runs in
    # a row a model reloads itself (0 = never); self-reloads in a row (and retries of a failed
    # one) wait RELOAD_BACKOFF_S, doubling, up to RELOAD_BACKOFF_MAX_S (app.reload_backoff).
    # WATCH_BUNDLES: a changed bundle folder is loaded (as POST /v2/repository/models/{name}/load)
    # once unchanged for WATCH_INTERVAL_S.
    run_timeout_s: float = Field(default=0.0, ge=0.0)
    stall_grace_s: float = Field(default=30.0, ge=0.0)
    max_consecutive_failures: int = Field(default=5, ge=0)
    reload_backoff_s: float = Field(default=1.0, ge=0.0)
    reload_backoff_max_s: float = Field(default=60.0, ge=0.0)
    watch_bundles: bool = False
    watch_interval_s: float = Field(default=2.0, gt=0.0)
    # Tests only: injected model faults, `<model>=<kind>[:<batches>]` (app.fault_injection);
    # refused unless FUSIONSERVE_TEST_ONLY_ALLOW_FAULTS=1 is also set, so it never acts by accident.
    fault_injection: CommaList = Field(default_factory=list)

    # Input limits
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    min_image_side: int = Field(default=8, ge=1)
    max_text_chars: int = Field(default=5000, ge=1)
    max_batch_items: int = Field(default=32, ge=1)
    # Slow clients: headers, then the body, must each arrive within BODY_TIMEOUT_S, and the body
    # at BODY_MIN_RATE bytes/s on average after its first 5 s (0 = no rate check); else 408 and
    # the connection is closed (app.header_deadline, app.body_deadline).
    body_timeout_s: float = Field(default=60.0, gt=0.0)
    body_min_rate: float = Field(default=1024.0, ge=0.0)

    # Predictions
    low_confidence_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # Answer 422 out_of_domain instead of a prediction when either side is out of domain
    # (bundles with a domain check; off: the answer carries the flags and low_confidence).
    refuse_out_of_domain: bool = False
    default_task_set: Literal["medpix", "wound"] = "medpix"

    # Exposure, logging, shutdown (read by the auth/observability/shutdown layers)
    api_key: SecretStr | None = None
    auth_protect_health: bool = False  # with API_KEY: also require it on /health/*
    auth_protect_metrics: bool = False  # with API_KEY: also require it on /metrics
    cors_origins: CommaList = Field(default_factory=list)
    log_format: Literal["json", "text"] = "json"
    metrics_enabled: bool = True  # GET /metrics; >1 worker then needs PROMETHEUS_MULTIPROC_DIR
    log_level: str = "info"
    drain_timeout_s: float = Field(default=20.0, ge=0.0)

    @field_validator("models", "providers", "cors_origins", "fault_injection", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        return split_commas(value)

    @field_validator("fault_injection")
    @classmethod
    def _faults_only_in_tests(cls, value: list[str]) -> list[str]:
        if value and os.environ.get(FAULTS_FLAG) != "1":
            raise ValueError(
                f"FAULT_INJECTION is for tests only and needs {FAULTS_FLAG}=1 as well; "
                "unset it in production"
            )
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_off(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def max_delay_s(self) -> float:
        return self.max_delay_ms / 1000.0
