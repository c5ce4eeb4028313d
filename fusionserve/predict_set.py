"""Scoring a set of cases against a server: N requests in flight, one JSONL record per case
written (and flushed) as soon as it is answered, so a stopped run resumes where it stopped.
A case's failure is its own record (stable error code); it never stops the run."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from fusionserve.client import AsyncClient, FusionServeError
from fusionserve.predict_cases import Case


@dataclass
class RunSummary:
    scored: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.scored / self.seconds if self.seconds > 0 else 0.0

    def line(self, out: Path) -> str:
        return (
            f"{self.scored} cases in {self.seconds:.1f}s ({self.rate:.1f} cases/s), "
            f"{self.errors} errors, {self.skipped} already in {out} skipped"
        )


def ok_record(case: Case, result: Any) -> dict[str, Any]:
    """The server's answer as sent, plus the case id; the text is not copied (medical data)."""
    return {
        "id": case.id,
        "image": case.image_ref,
        "status": "ok",
        **result.raw,
        "request_id": result.request_id,
    }


def error_record(case: Case, error: FusionServeError) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": error.code, "message": error.message}
    if hasattr(error, "status"):
        detail["http_status"] = error.status
    return {"id": case.id, "image": case.image_ref, "status": "error", "error": detail}


async def score_case(
    client: AsyncClient, case: Case, model: str | None, role: str | None
) -> dict[str, Any]:
    if case.image is None:
        missing = FusionServeError(f"image {case.image_ref!r} not found", "image_not_found")
        return error_record(case, missing)
    try:
        return ok_record(case, await client.predict(case.image, case.text, model, role))
    except FusionServeError as exc:
        return error_record(case, exc)


def open_for_append(out: Path) -> IO[str]:
    """Append mode; if a killed run left a torn last line, start on a fresh line."""
    torn = out.exists() and out.stat().st_size > 0 and not out.read_bytes().endswith(b"\n")
    handle = out.open("a", encoding="utf-8")
    if torn:
        handle.write("\n")
    return handle


async def score_cases(
    client: AsyncClient,
    cases: list[Case],
    out: Path,
    *,
    concurrency: int,
    model: str | None,
    role: str | None,
    progress: bool,
) -> RunSummary:
    summary = RunSummary()
    queue: asyncio.Queue[Case] = asyncio.Queue()
    for case in cases:
        queue.put_nowait(case)
    bar = tqdm(total=len(cases), unit="case", disable=not progress, dynamic_ncols=True)
    start = time.perf_counter()
    with open_for_append(out) as handle:

        async def worker() -> None:
            while not queue.empty():
                case = queue.get_nowait()
                record = await score_case(client, case, model, role)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
                summary.scored += 1
                summary.errors += record["status"] == "error"
                bar.update(1)
                bar.set_postfix(errors=summary.errors, refresh=False)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(cases)) or 1)))
    summary.seconds = time.perf_counter() - start
    bar.close()
    return summary
