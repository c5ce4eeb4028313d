"""Fusion registry: one module per research fusion, looked up by (research-tolerant) name.

The research factory silently fell back to ``SimpleFusion`` on unknown names; here every
unknown name (and ``simple``, which we do not ship) fails loudly with the valid names listed.
"""

from __future__ import annotations

from typing import Any

from models.fusion.base import FusionModule
from models.fusion.concat_mlp import ConcatMLPFusion
from models.fusion.cross_attention import CrossAttentionFusion
from models.fusion.energy_aware_adaptive import EnergyAwareAdaptiveFusion
from models.fusion.film import FiLMFusion
from models.fusion.gated import GatedFusion
from models.fusion.modality_dropout import ModalityDropoutFusion
from models.fusion.shomr import SHoMRFusion
from models.fusion.transformer_concat import TransformerConcatFusion

FUSIONS: dict[str, type[FusionModule]] = {
    "cross_attention": CrossAttentionFusion,
    "concat_mlp": ConcatMLPFusion,
    "gated": GatedFusion,
    "transformer_concat": TransformerConcatFusion,
    "modality_dropout": ModalityDropoutFusion,
    "film": FiLMFusion,
    "energy_aware_adaptive": EnergyAwareAdaptiveFusion,
    "shomr": SHoMRFusion,
}

# Keys of the research `fusion:` YAML section that the factory reads (or reads and ignores).
KNOWN_FUSION_PARAMS = frozenset(
    {
        "type",  # the research engine passed the whole section, type included
        "hidden_mult",
        "dropout",
        "p_img",
        "p_txt",
        "num_moments",  # read but unused by the research code
        "confidence_threshold",
        "routing_temperature",
        "energy_budget_mJ",
    }
)


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


_ALIASES: dict[str, str] = {}
for _key, _cls in FUSIONS.items():
    _ALIASES[_normalise(_key)] = _key
    _ALIASES[_normalise(_cls.__name__)] = _key


def valid_fusion_names() -> list[str]:
    return list(FUSIONS)


def canonical_fusion_name(name: str) -> str:
    """Map research spellings (``cross-attention``, ``CrossAttentionFusion``) to a registry key."""
    key = _ALIASES.get(_normalise(name))
    if key is None:
        hint = (
            " ('simple' is not supported: the research SimpleFusion is only reached by its "
            "silent fallback)"
            if _normalise(name) in {"simple", "simplefusion"}
            else ""
        )
        raise ValueError(
            f"unknown fusion type {name!r}{hint}; valid: {', '.join(valid_fusion_names())}"
        )
    return key


def validate_fusion_params(params: dict[str, Any]) -> None:
    unknown = sorted(set(params) - KNOWN_FUSION_PARAMS)
    if unknown:
        raise ValueError(
            f"unknown fusion_params {unknown}; valid: {', '.join(sorted(KNOWN_FUSION_PARAMS))}"
        )


def build_fusion(
    name: str, dim: int, heads: int, layers: int, params: dict[str, Any] | None = None
) -> FusionModule:
    """Build a fusion exactly as the research factory wires it (docs/spec.md §2.4 table)."""
    params = dict(params or {})
    validate_fusion_params(params)
    cls = FUSIONS[canonical_fusion_name(name)]
    if cls.uses_heads and dim % heads != 0:
        raise ValueError(f"fusion_dim {dim} must be divisible by fusion_heads {heads}")
    return cls.from_options(dim=dim, heads=heads, layers=layers, params=params)


__all__ = [
    "FUSIONS",
    "ConcatMLPFusion",
    "CrossAttentionFusion",
    "EnergyAwareAdaptiveFusion",
    "FiLMFusion",
    "FusionModule",
    "GatedFusion",
    "ModalityDropoutFusion",
    "SHoMRFusion",
    "TransformerConcatFusion",
    "build_fusion",
    "canonical_fusion_name",
    "valid_fusion_names",
    "validate_fusion_params",
]
