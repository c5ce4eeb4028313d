"""One benchmark target as the report shows it, and the number format every table uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    holds: bool | None  # None: not measured in this run


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"
