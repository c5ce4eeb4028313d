"""One batched pass of a network over an image with its text and with the empty-text fallback.

Both the seed ensemble's image vote and late fusion need a network's fused answer and its
image-only answer (the service's empty-text fallback in place of the text). Stacking the two
along the batch runs every weight once in the exported graph (int8 quantizes MatMuls whose
weight is a plain initializer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from models.backbones import text_features, vision_features
from models.multitask import MultiTaskModel


@dataclass
class PairedAnswers:
    fused: dict[str, Tensor]  # the network's outputs for (image, text)
    image_only: dict[str, Tensor]  # …for (image, fallback)
    img_raw: Tensor  # pre-fusion features (the domain check's embeddings)
    txt_raw: Tensor


@torch.no_grad()
def empty_text_projection(network: MultiTaskModel, ids: list[int]) -> Tensor:
    """(1, D) the network's projected text features of the fallback (`ids`, unpadded)."""
    network.eval()
    tokens = torch.tensor([list(ids)], dtype=torch.int64)
    return network.proj_txt(text_features(network.text, tokens, torch.ones_like(tokens)))


def paired_pass(
    network: MultiTaskModel,
    empty_proj: Tensor,
    pixel_values: Tensor,
    input_ids: Tensor,
    attention_mask: Tensor,
) -> PairedAnswers:
    img_raw = vision_features(network.vision, pixel_values)
    txt_raw = text_features(network.text, input_ids, attention_mask)
    img, txt = network.proj_vis(img_raw), network.proj_txt(txt_raw)
    n = img.shape[0]
    both = network.classify(torch.cat([img, img]), torch.cat([txt, empty_proj.expand(n, -1)]))
    return PairedAnswers(
        fused={k: v[:n] for k, v in both.items()},
        image_only={k: v[n:] for k, v in both.items()},
        img_raw=img_raw,
        txt_raw=txt_raw,
    )
