"""Cases for `fusionserve predict --csv`: rows of a CSV or JSONL file → (id, image path, text),
and the results file's resume state. Bad files fail before any request, with what to fix."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class CasesError(Exception):
    """A usage problem with the cases file, its columns or the images folder."""


@dataclass(frozen=True)
class Case:
    id: str
    image: Path | None  # None: not found under the images folder (recorded as a case error)
    image_ref: str
    text: str


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise CasesError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        return
    with path.open(encoding="utf-8-sig", newline="") as f:
        for number, row in enumerate(csv.DictReader(f), 2):
            yield number, row


def field(row: dict[str, Any], column: str) -> Any:
    """`column` as a key, or a dotted path into nested JSON (`Description.Caption`)."""
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(column)
        value = value[part]
    return value


def resolve_image(images: Path, ref: str) -> Path | None:
    """images/ref, or images/ref.<suffix> when the column holds a file stem (MedPix's `image`)."""
    candidate = images / ref
    if candidate.is_file():
        return candidate
    if not Path(ref).suffix:
        for suffix in IMAGE_SUFFIXES:
            if (images / (ref + suffix)).is_file():
                return images / (ref + suffix)
    return None


def read_cases(
    path: Path, images: Path, image_column: str, text_column: str, id_column: str | None
) -> list[Case]:
    if not path.is_file():
        raise CasesError(f"cases file not found: {path}")
    if not images.is_dir():
        raise CasesError(f"images folder not found: {images}")
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path):
        try:
            ref = str(field(row, image_column))
            text = field(row, text_column)
            case_id = str(field(row, id_column)) if id_column else ref
        except KeyError as exc:
            columns = ", ".join(sorted(row)) if isinstance(row, dict) else "(not an object)"
            raise CasesError(
                f"{path}:{number}: no column {exc.args[0]!r}; columns here: {columns}"
            ) from None
        if case_id in seen:
            raise CasesError(
                f"{path}:{number}: case id {case_id!r} repeats line {seen[case_id]}; "
                "ids must be unique to resume (choose --id-column)"
            )
        seen[case_id] = number
        text = "" if text is None else str(text)
        cases.append(Case(case_id, resolve_image(images, ref), ref, text))
    if not cases:
        raise CasesError(f"{path} holds no cases")
    return cases


def finished_ids(out: Path, retry_errors: bool) -> set[str]:
    """Ids already in the results file (successes; errors too unless retry_errors). A torn last
    line (the run was killed mid-write) is ignored: that case simply runs again."""
    if not out.exists():
        return set()
    done: set[str] = set()
    with out.open(encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("status") == "ok":
                done.add(str(record["id"]))
            elif not retry_errors:
                done.add(str(record.get("id")))
    return done
