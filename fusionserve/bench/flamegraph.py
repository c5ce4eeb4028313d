"""A flame graph (SVG) from py-spy's raw collapsed stacks, with no tool beyond this file.

py-spy writes either a flame graph or raw stacks per recording; the bench needs the raw stacks
for its per-stage table, and a second sampler would double the perturbation. So the SVG is drawn
here from the same samples: one row per stack depth, widths proportional to samples, threads
merged (their names are the first frame), hover titles with the sample counts.
"""

from __future__ import annotations

import html
import zlib
from pathlib import Path

from fusionserve.bench.profile import short_frame

WIDTH = 1600
ROW = 16
MIN_PX = 0.4


class _Node:
    __slots__ = ("children", "count")

    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, _Node] = {}


def _tree(raw_path: Path) -> _Node:
    root = _Node()
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        node = root
        node.count += count
        for frame in stack.split(";"):
            node = node.children.setdefault(short_frame(frame), _Node())
            node.count += count
    return root


def _colour(name: str) -> str:
    h = zlib.crc32(name.encode())
    return f"rgb({205 + h % 50},{(h >> 8) % 150 + 60},{(h >> 16) % 55})"


def render(raw_path: Path, svg_path: Path, title: str) -> None:
    """Write the flame graph of `raw_path` to `svg_path`."""
    root = _tree(raw_path)
    total = max(root.count, 1)
    rects: list[str] = []
    depth_max = 0

    def draw(node: _Node, name: str, x: float, depth: int) -> None:
        nonlocal depth_max
        width = WIDTH * node.count / total
        if width < MIN_PX:
            return
        depth_max = max(depth_max, depth)
        label = html.escape(name)
        tip = f"{label} ({node.count} samples, {100 * node.count / total:.1f}%)"
        text = label[: int(width / 7)] if width > 30 else ""
        rects.append(
            f'<g><title>{tip}</title><rect x="{x:.1f}" y="{{y{depth}}}" width="{width:.1f}" '
            f'height="{ROW - 1}" fill="{_colour(name)}"/>'
            f'<text x="{x + 2:.1f}" y="{{t{depth}}}">{text}</text></g>'
        )
        child_x = x
        for child_name, child in sorted(node.children.items()):
            draw(child, child_name, child_x, depth + 1)
            child_x += WIDTH * child.count / total

    draw(root, "all", 0.0, 0)
    height = (depth_max + 3) * ROW
    body = "\n".join(rects)
    for depth in range(depth_max + 1):
        y = height - (depth + 1) * ROW
        body = body.replace(f'"{{y{depth}}}"', f'"{y}"').replace(f'"{{t{depth}}}"', f'"{y + 12}"')
    svg_path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">\n'
        f'<text x="4" y="14" font-size="13">{html.escape(title)} — {root.count} samples</text>\n'
        f"{body}\n</svg>\n",
        encoding="utf-8",
    )
