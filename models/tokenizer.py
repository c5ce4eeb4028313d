"""WordPiece tokenizers for the text backbone: trained on the training texts, or loaded.

The result is a plain `tokenizers.Tokenizer` whose JSON ships in the bundle, so serving
(`app.contract.text.TextEncoder`) tokenises exactly as training did without transformers.
BERT conventions: BERT normaliser (lowercase + accent strip when `lowercase`), BERT
pre-tokenizer, `[CLS] $A [SEP]` template, specials [PAD]=0 [UNK] [CLS] [SEP] [MASK].
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import WordPieceTrainer

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _bert_pipeline(tokenizer: Tokenizer, lowercase: bool) -> Tokenizer:
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def _add_template(tokenizer: Tokenizer) -> Tokenizer:
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ValueError("tokenizer vocabulary lacks [CLS] or [SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer


def train_wordpiece(
    texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = True, min_frequency: int = 2
) -> Tokenizer:
    """Train a BERT-style WordPiece tokenizer on `texts` (pass only the training split)."""
    tokenizer = _bert_pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]")), lowercase)
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return _add_template(tokenizer)


def load_tokenizer(path: str | Path, lowercase: bool = True) -> Tokenizer:
    """Load a `tokenizer.json`, or build a BERT WordPiece tokenizer from a `vocab.txt`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path.resolve()}")
    if path.suffix == ".json":
        return Tokenizer.from_file(str(path))
    vocab = {
        token: index
        for index, token in enumerate(path.read_text(encoding="utf-8").splitlines())
        if token
    }
    missing = [t for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]") if t not in vocab]
    if missing:
        raise ValueError(f"{path}: vocabulary lacks special token(s) {missing}")
    wordpiece = models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##")
    return _add_template(_bert_pipeline(Tokenizer(wordpiece), lowercase))


def token_length_percentiles(
    tokenizer: Tokenizer, texts: Sequence[str], percentiles: Sequence[float] = (50, 95, 99, 100)
) -> dict[str, int]:
    """Token counts (with [CLS]/[SEP]) at the given percentiles: evidence for max_length."""
    unpadded = Tokenizer.from_str(tokenizer.to_str())  # a shipped JSON may pad/truncate
    unpadded.no_padding()
    unpadded.no_truncation()
    counts = sorted(len(enc.ids) for enc in unpadded.encode_batch(list(texts)))
    if not counts:
        return {}
    out: dict[str, int] = {}
    for pct in percentiles:
        index = min(len(counts) - 1, max(0, round(pct / 100 * len(counts)) - 1))
        out[f"p{pct:g}"] = counts[index]
    return out
