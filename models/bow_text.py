"""A linear text classifier on WordPiece counts, one per task, that lives inside the graph.

Why: in Wound-1-0 the descriptions are paired with photos by class and the train split holds
only 1,086 distinct texts; a small BERT trained on them memorises those texts, and on unseen dev
descriptions it reads wound type and severity worse (dev macro-F1 .29 / .88) than a regularised
linear model on the same tokens (.45 / .95, `python -m models.training.late_fusion`). Its input
is TF-IDF (log(1 + count) · scikit-learn's smooth idf, L2-normalised) over the bundle's own
token ids, so it needs no second tokenizer and exports as a handful of ONNX ops.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class BagOfWordsText(nn.Module):
    """(input_ids, attention_mask) → per task log-probabilities, and whether the text is more
    than the service's empty-text fallback (`present`, (B,) bool: its counts differ from
    `empty_counts`, set by `set_empty_text`)."""

    idf: Tensor
    empty_counts: Tensor

    def __init__(self, vocab_size: int, class_counts: Sequence[int]) -> None:
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.register_buffer("idf", torch.ones(self.vocab_size))
        self.register_buffer("empty_counts", torch.zeros(self.vocab_size))
        self.heads = nn.ModuleList(nn.Linear(self.vocab_size, int(c)) for c in class_counts)

    def counts(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, V) how often each token id occurs among the unmasked positions."""
        counts = torch.zeros(
            input_ids.shape[0], self.vocab_size, dtype=torch.float32, device=input_ids.device
        )
        return counts.scatter_add(1, input_ids, attention_mask.to(torch.float32))

    def features(self, counts: Tensor) -> Tensor:
        """TF-IDF rows: log(1 + count) · idf, scaled to unit length (all-zero rows stay zero)."""
        weighted = torch.log1p(counts) * self.idf
        norm = weighted.square().sum(-1, keepdim=True).sqrt().clamp_min(1e-12)
        return weighted / norm

    @torch.no_grad()
    def set_empty_text(self, ids: Sequence[int]) -> None:
        """Record the fallback's counts: a text equal to it carries no evidence."""
        tokens = torch.tensor([list(ids)], dtype=torch.int64)
        self.empty_counts.copy_(self.counts(tokens, torch.ones_like(tokens))[0])

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[list[Tensor], Tensor]:
        counts = self.counts(input_ids, attention_mask)
        present = (counts != self.empty_counts).any(-1)
        x = self.features(counts)
        return [torch.log_softmax(head(x), dim=-1) for head in self.heads], present
