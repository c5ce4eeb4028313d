"""The in-graph bag-of-words model computes scikit-learn's TF-IDF and knows the fallback."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfTransformer

from models.bow_text import BagOfWordsText


def test_counts_ignore_padding_and_features_are_log_tf_idf_of_unit_length() -> None:
    bow = BagOfWordsText(vocab_size=10, class_counts=[3, 2])
    ids = torch.tensor([[1, 4, 4, 7, 2, 0], [1, 5, 2, 0, 0, 0], [1, 4, 5, 5, 5, 2]])
    mask = (ids != 0).long()
    mask[:, 0] = 1
    counts = bow.counts(ids, mask)
    assert counts[0, 4] == 2 and counts[0, 0] == 0 and counts[2, 5] == 3
    n, df = 3, (counts > 0).sum(0).numpy()
    bow.idf.copy_(torch.from_numpy(np.log((1 + n) / (1 + df)) + 1).float())
    # scikit-learn's TF-IDF with log(1 + count) in place of its term frequency
    want = TfidfTransformer(sublinear_tf=False).fit_transform(np.log1p(counts.numpy())).toarray()
    np.testing.assert_allclose(bow.features(counts).numpy(), want, atol=1e-6)


def test_the_fallback_text_is_not_present_and_any_other_text_is() -> None:
    bow = BagOfWordsText(vocab_size=40, class_counts=[3, 2])
    bow.set_empty_text([1, 17, 33, 2])
    ids = torch.tensor([[1, 17, 33, 2, 0], [1, 17, 33, 33, 2], [1, 33, 17, 2, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    logp, present = bow(ids, mask)
    # the same tokens in another order count the same: a bag of words cannot tell them apart
    assert present.tolist() == [False, True, False]
    assert [p.shape for p in logp] == [(3, 3), (3, 2)]
    torch.testing.assert_close(logp[0].exp().sum(-1), torch.ones(3))
