"""Text → token ids with the bundle's own `tokenizers` tokenizer (no transformers at serve time).

Research text preprocessing (docs/spec.md §3.3): empty text → "No description available",
truncation, pad to a fixed max length, pass input_ids + attention_mask only. Graphs with a
dynamic sequence axis then run each batch cut to its longest text rounded up to a multiple of
16 (`trim_padding`); graphs exported with a fixed length get the full padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

EMPTY_TEXT_FALLBACK = "No description available"
LENGTH_BUCKET = 16  # batches are padded to a multiple of this: few distinct shapes to run


def bucketed_length(longest: int, max_length: int, bucket: int = LENGTH_BUCKET) -> int:
    """The padded length for a batch whose longest text has `longest` tokens: rounded up to
    a multiple of `bucket`, never above `max_length` (right padding past the longest real
    token changes nothing under the attention mask)."""
    if longest < 1 or max_length < 1:
        raise ValueError(f"lengths must be >= 1, got longest={longest}, max={max_length}")
    return min(max_length, -(-longest // bucket) * bucket)


def trim_padding(
    input_ids: np.ndarray, attention_mask: np.ndarray, bucket: int = LENGTH_BUCKET
) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded [B, L] ids and mask cut to the batch's bucketed longest text."""
    longest = int(attention_mask.sum(axis=1).max(initial=1))
    length = bucketed_length(longest, input_ids.shape[1], bucket)
    return input_ids[:, :length], attention_mask[:, :length]


@dataclass(frozen=True)
class EncodedText:
    """A batch of token ids and masks, plus how many real tokens each text had."""

    input_ids: np.ndarray  # int64 [B, L]
    attention_mask: np.ndarray  # int64 [B, L]
    token_counts: list[int]  # real tokens before truncation (incl. special tokens)
    truncated: list[bool]


class TextEncoder:
    """Wraps a `tokenizers.Tokenizer` with the research padding/truncation policy."""

    def __init__(
        self, tokenizer: Tokenizer, max_length: int, empty_text: str = EMPTY_TEXT_FALLBACK
    ) -> None:
        self.max_length = max_length
        self.empty_text = empty_text
        self._tokenizer = tokenizer
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        pad_id = tokenizer.token_to_id("[PAD]")
        self.pad_id = 0 if pad_id is None else pad_id

    @classmethod
    def from_file(
        cls, path: str | Path, max_length: int, empty_text: str = EMPTY_TEXT_FALLBACK
    ) -> TextEncoder:
        return cls(Tokenizer.from_file(str(path)), max_length, empty_text)

    @property
    def vocab_size(self) -> int:
        return int(self._tokenizer.get_vocab_size())

    def normalise(self, text: str) -> str:
        stripped = text.strip()
        return stripped if stripped else self.empty_text

    def encode(self, texts: Sequence[str]) -> EncodedText:
        encodings = self._tokenizer.encode_batch([self.normalise(t) for t in texts])
        batch = len(encodings)
        ids = np.full((batch, self.max_length), self.pad_id, dtype=np.int64)
        mask = np.zeros((batch, self.max_length), dtype=np.int64)
        counts: list[int] = []
        truncated: list[bool] = []
        for row, enc in enumerate(encodings):
            tokens = enc.ids
            counts.append(len(tokens))
            if len(tokens) > self.max_length:
                # Keep the final special token ([SEP]) like HF truncation does.
                tokens = [*tokens[: self.max_length - 1], tokens[-1]]
                truncated.append(True)
            else:
                truncated.append(False)
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return EncodedText(ids, mask, counts, truncated)
