"""The one multi-task, multi-modal model; teacher and student are configurations of it.

Layout (attribute names = state_dict prefixes, identical to the research Teacher/Student, so
research ``.pth`` files load 1:1): vision, text, proj_vis, proj_txt, fusion, dropout,
head_modality, head_location.

API notes:
- FusionModule lives in models/fusion/base.py and is re-exported by models.fusion; subclasses
  implement ``fuse(v, t)`` (no weights) or ``forward_with_weights(v, t)``, are built through
  ``from_options(dim, heads, layers, params)``, and declare ``has_modality_weights`` /
  ``uses_heads`` as class attributes.
- ModelConfig stores fusion_type canonically ("CrossAttentionFusion" → "cross_attention") and
  rejects unknown fusion_params keys.
- models.checkpoint adds ``load_research_checkpoint(path, cfg)`` and ``CheckpointMismatchError``;
  ``load_checkpoint`` takes an optional ``map_location`` and our payload carries "format": 1.
- concat_mlp / transformer_concat honour fusion_params["dropout"] (research: fixed 0.1 there);
  this changes training only, never eval outputs or parameter names.
"""

from __future__ import annotations

from torch import Tensor, nn

from models.backbones import build_text, build_vision, feature_dim, text_features, vision_features
from models.config import ModelConfig
from models.fusion import build_fusion
from models.heads import ClassificationHead

OUTPUT_KEYS = (
    "logits_modality",
    "logits_location",
    "img_raw",
    "txt_raw",
    "img_proj",
    "txt_proj",
)
MODALITY_WEIGHTS_KEY = "modality_weights"
EMBEDDING_KEYS = ("img_raw", "txt_raw")  # pre-fusion image, text features (the domain check's)
LOGIT_KEYS = ("logits_modality", "logits_location")  # task 1, task 2


class MultiTaskModel(nn.Module):
    """Image + text → two tasks' logits (research Teacher/Student layout).

    forward(pixel_values f32[B,3,H,W], input_ids i64[B,L], attention_mask i64[B,L]) returns
    logits_modality (B,C1), logits_location (B,C2), img_raw (B,vis_dim), txt_raw (B,txt_dim),
    img_proj (B,D), txt_proj (B,D), plus modality_weights (B,2: image, text) when the fusion
    exposes them. Wound "type"/"severity" come out of logits_modality/logits_location.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vision = build_vision(cfg.vision)
        self.text = build_text(cfg.text, vocab_size=cfg.text_vocab_size)
        self.proj_vis = nn.Linear(feature_dim(self.vision), cfg.fusion_dim)
        self.proj_txt = nn.Linear(feature_dim(self.text), cfg.fusion_dim)
        self.fusion = build_fusion(
            cfg.fusion_type,
            cfg.fusion_dim,
            cfg.fusion_heads,
            cfg.fusion_layers,
            cfg.fusion_params,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.head_modality = ClassificationHead(cfg.fusion_dim, cfg.num_classes[0])
        self.head_location = ClassificationHead(cfg.fusion_dim, cfg.num_classes[1])

    @property
    def has_modality_weights(self) -> bool:
        return self.fusion.has_modality_weights

    def forward(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> dict[str, Tensor]:
        img_raw = vision_features(self.vision, pixel_values)
        txt_raw = text_features(self.text, input_ids, attention_mask)
        img_proj = self.proj_vis(img_raw)
        txt_proj = self.proj_txt(txt_raw)
        heads = self.classify(img_proj, txt_proj)
        out = {
            "logits_modality": heads["logits_modality"],
            "logits_location": heads["logits_location"],
            "img_raw": img_raw,
            "txt_raw": txt_raw,
            "img_proj": img_proj,
            "txt_proj": txt_proj,
        }
        if MODALITY_WEIGHTS_KEY in heads:
            out[MODALITY_WEIGHTS_KEY] = heads[MODALITY_WEIGHTS_KEY]
        return out

    def classify(self, img_proj: Tensor, txt_proj: Tensor) -> dict[str, Tensor]:
        """Fusion → dropout → both heads from projected features: the forward pass's tail, also
        run on its own by training's unimodal losses (models.training.unimodal)."""
        fused, weights = self.fusion.forward_with_weights(img_proj, txt_proj)
        fused = self.dropout(fused)
        out = {
            "logits_modality": self.head_modality(fused),
            "logits_location": self.head_location(fused),
        }
        if weights is not None:
            out[MODALITY_WEIGHTS_KEY] = weights
        return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
