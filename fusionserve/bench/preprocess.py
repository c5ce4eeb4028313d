"""Image preprocessing cost: training's exact path against serving's fast path, per item.

Run from the repository root (seconds, one core):

    python -m fusionserve.bench.preprocess [--datasets-root ../shared/datasets] [--items 20]
        [--repeats 10]

Three inputs, as clients send them: the MedPix dev PNGs (grayscale, ~320 px), the wound dev
JPEGs (~320 px or smaller) and one synthetic 1024×768 phone-size JPEG (q90). For each, the exact
path (`decode_image` + `image_to_array`, what training reads) and the fast path
(`preprocess_image`, what serving reads: JPEG draft, box reduce) are timed call by call,
alternating; the table gives the median wall and thread-CPU ms per item and exact/fast CPU.
CPU time is the robust figure on a machine that runs other work.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from app.contract.image import decode_image, image_to_array, preprocess_image
from fusionserve.bench.samples import load_dev_samples

DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
SIZE = 224
PHONE_REPEAT = 5  # the phone image is one file: time it this many times per round


def phone_photo(width: int = 1024, height: int = 768) -> Image.Image:
    """A deterministic phone-size photo stand-in: smooth gradients, hard edges, thin lines."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)]
    img = Image.fromarray(np.stack(planes, axis=-1).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(200, 30, 40))
    draw.rectangle((width // 2, height // 2, width * 3 // 4, height * 7 // 8), fill=(20, 200, 90))
    for left in range(0, width, width // 16):
        draw.line((left, 0, left + height // 3, height), fill=(255, 255, 255), width=3)
    return img


def phone_jpeg(width: int = 1024, height: int = 768, quality: int = 90) -> bytes:
    img = phone_photo(width, height)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def exact_path(data: bytes) -> np.ndarray:
    return image_to_array(decode_image(data), SIZE)


def fast_path(data: bytes) -> np.ndarray:
    return preprocess_image(data, SIZE).pixels


def time_paths(items: Sequence[bytes], repeats: int) -> dict[str, tuple[float, float]]:
    """Path name → (median wall ms, median thread-CPU ms) over every call.

    The two paths alternate call by call (order flipped each round), so load from other work on
    the machine falls on both alike.
    """
    paths: dict[str, Callable[[bytes], np.ndarray]] = {"exact": exact_path, "fast": fast_path}
    for fn in paths.values():
        fn(items[0])  # warm caches and lazy imports
    wall: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for round_index in range(repeats):
        order = list(paths) if round_index % 2 == 0 else list(reversed(paths))
        for data in items:
            for name in order:
                start_wall, start_cpu = time.perf_counter(), time.thread_time()
                paths[name](data)
                cpu[name].append(time.thread_time() - start_cpu)
                wall[name].append(time.perf_counter() - start_wall)
    return {
        name: (1000 * statistics.median(wall[name]), 1000 * statistics.median(cpu[name]))
        for name in paths
    }


def inputs(datasets_root: Path, items: int) -> dict[str, list[bytes]]:
    """The three input sets, as raw file bytes."""
    return {
        f"medpix png x{items}": [s.image for s in load_dev_samples("medpix", datasets_root, items)],
        f"wound jpeg x{items}": [s.image for s in load_dev_samples("wound", datasets_root, items)],
        "phone jpeg 1024x768": [phone_jpeg()] * PHONE_REPEAT,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--items", type=int, default=20, help="dev images per dataset")
    parser.add_argument("--repeats", type=int, default=10, help="rounds over each set")
    args = parser.parse_args(argv)
    header = ("input", "exact ms", "fast ms", "exact CPU", "fast CPU", "ratio")
    print("{:<22}{:>10}{:>9}{:>11}{:>10}{:>7}".format(*header))
    for name, items in inputs(args.datasets_root, args.items).items():
        timings = time_paths(items, args.repeats)
        (exact_wall, exact_cpu), (fast_wall, fast_cpu) = timings["exact"], timings["fast"]
        ratio = exact_cpu / fast_cpu if fast_cpu > 0 else float("nan")
        print(
            f"{name:<22}{exact_wall:>10.2f}{fast_wall:>9.2f}"
            f"{exact_cpu:>11.2f}{fast_cpu:>10.2f}{ratio:>6.2f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
