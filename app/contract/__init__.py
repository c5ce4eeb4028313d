"""The bundle contract shared by training/export (torch) and serving (torch-free).

Nothing in this package may import torch, transformers or training code.
"""

from app.contract.image import ImageDecodeError, decode_image, image_to_array, load_image_file
from app.contract.manifest import (
    MANIFEST_FORMAT_VERSION,
    Manifest,
    Preprocessing,
    TaskSpec,
)
from app.contract.tasks import TASK_SETS, TaskSetSpec, task_set
from app.contract.text import TextEncoder

__all__ = [
    "MANIFEST_FORMAT_VERSION",
    "TASK_SETS",
    "ImageDecodeError",
    "Manifest",
    "Preprocessing",
    "TaskSetSpec",
    "TaskSpec",
    "TextEncoder",
    "decode_image",
    "image_to_array",
    "load_image_file",
    "task_set",
]
