"""Real request payloads: images and texts from a task set's dev split, read once into memory.

The load generator sends what clinicians' tools send (a real image file and its real caption or
description), pre-encoded as multipart bodies so the client spends its CPU on HTTP, not on
re-encoding the same bytes for every request.
"""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

DATASET_DIRS = {"medpix": "medpix-2.0", "wound": "wound-1-0"}
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


@dataclass(frozen=True)
class Sample:
    """One dev item as a client would send it."""

    name: str
    image: bytes
    content_type: str
    text: str


def _medpix_rows(root: Path) -> list[tuple[Path, str]]:
    rows = []
    with (root / "descriptions_dev.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            caption = (row.get("Description") or {}).get("Caption") or ""
            rows.append((root / "images" / f"{row['image']}.png", caption))
    return rows


def _wound_rows(root: Path) -> list[tuple[Path, str]]:
    with (root / "metadata_dev.csv").open(encoding="utf-8", newline="") as handle:
        return [(root / "images" / r["img_path"], r["description"]) for r in csv.DictReader(handle)]


def load_dev_samples(task_set: str, datasets_root: Path, limit: int) -> list[Sample]:
    """Up to `limit` dev samples in split order (deterministic, so runs are comparable)."""
    root = datasets_root / DATASET_DIRS[task_set]
    rows = _medpix_rows(root) if task_set == "medpix" else _wound_rows(root)
    samples: list[Sample] = []
    for path, text in rows:
        if len(samples) >= limit:
            break
        if path.is_file():
            content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
            samples.append(Sample(path.name, path.read_bytes(), content_type, text))
    if not samples:
        raise FileNotFoundError(f"no {task_set} dev images found under {root}")
    return samples


def multipart_body(sample: Sample) -> tuple[bytes, str]:
    """(body, Content-Type header) of a /predict form: `image` file part + `text` field."""
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n').encode()
    middle = (
        f"\r\n--{boundary}\r\n"
        f'Content-Disposition: form-data; name="image"; filename="{sample.name}"\r\n'
        f"Content-Type: {sample.content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + sample.text.encode("utf-8") + middle + sample.image + tail
    return body, f"multipart/form-data; boundary={boundary}"
