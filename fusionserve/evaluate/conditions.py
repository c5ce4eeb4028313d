"""The three inputs every case is scored on: fused, image only and text only.

Image only sends an empty text, so the service itself substitutes the bundle's empty-text
fallback (`preprocessing.empty_text`, "No description available"): exactly what a client who
leaves the text out gets. Text only sends BLANK_IMAGE: an RGB PNG of the bundle's input size
with every pixel (0, 0, 0), i.e. black, -1 after normalisation. Black because MedPix slices sit
on black backgrounds and the service composites transparency on black.
"""

from __future__ import annotations

import io

from PIL import Image

from fusionserve.evaluate.cases import Case

CONDITIONS: dict[str, str] = {
    "fused": "the case's image and text",
    "image_only": "the case's image; an empty text, for which the service substitutes the "
    "bundle's empty-text fallback",
    "text_only": "the case's text; a blank image (RGB PNG at the bundle's input size, every "
    "pixel (0, 0, 0) black)",
}
TITLES = {"fused": "fused", "image_only": "image only", "text_only": "text only"}
BLANK_RGB = (0, 0, 0)


def blank_image(size: int) -> bytes:
    """The text-only condition's image: a black size×size RGB PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), BLANK_RGB).save(buffer, format="PNG")
    return buffer.getvalue()


def inputs_for(condition: str, case: Case, blank: bytes) -> tuple[bytes, str]:
    """(image bytes, text) sent for `case` under `condition`."""
    if condition == "fused":
        return case.image, case.text
    if condition == "image_only":
        return case.image, ""
    if condition == "text_only":
        return blank, case.text
    raise ValueError(f"unknown condition {condition!r}; valid: {list(CONDITIONS)}")
