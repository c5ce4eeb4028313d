"""Image arguments → (filename, bytes, media type) for upload.

Paths and bytes are sent as they are (the server decodes and checks them; re-encoding would cost
time and could change pixels). A PIL image is encoded losslessly as PNG first.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
from pathlib import Path
from typing import TypeAlias

from PIL import Image

from fusionserve.client.errors import InvalidInput

ImageInput: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image


def read_image(image: ImageInput) -> tuple[str, bytes, str]:
    """Accept a path, raw file bytes or a PIL image; raise InvalidInput for anything else."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return "image", bytes(image), "application/octet-stream"
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read image {path}: {exc.strerror or exc}") from None
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return path.name, data, media
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return "image.png", buffer.getvalue(), "image/png"
    raise InvalidInput(f"image must be a path, bytes or a PIL image, not {type(image).__name__}")


def image_base64(image: ImageInput) -> str:
    """The JSON form used by /predict/batch."""
    return base64.b64encode(read_image(image)[1]).decode("ascii")
