"""TextEncoder: the research padding/truncation policy over a real WordPiece tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from app.contract.text import EMPTY_TEXT_FALLBACK, TextEncoder, bucketed_length, trim_padding


@pytest.fixture(scope="module")
def tokenizer(medpix_root) -> Tokenizer:  # type: ignore[no-untyped-def]
    lines = (medpix_root / "descriptions_dev.jsonl").read_text().splitlines()[:80]
    captions = [json.loads(line)["Description"]["Caption"] or "" for line in lines]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    tok.train_from_iterator(captions, trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return tok


def test_pads_to_fixed_length(tokenizer: Tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_length=16).encode(["axial ct of the brain", "mri"])
    assert enc.input_ids.shape == (2, 16) and enc.input_ids.dtype == np.int64
    assert enc.attention_mask.dtype == np.int64
    assert enc.attention_mask.sum(axis=1).tolist() == enc.token_counts
    assert enc.input_ids[0, 0] == tokenizer.token_to_id("[CLS]")
    assert (enc.input_ids[enc.attention_mask == 0] == tokenizer.token_to_id("[PAD]")).all()


def test_truncation_keeps_final_sep(tokenizer: Tokenizer) -> None:
    enc = TextEncoder(tokenizer, max_length=8).encode(["the brain " * 20])
    assert enc.truncated == [True] and enc.token_counts[0] > 8
    assert enc.attention_mask.sum() == 8
    assert enc.input_ids[0, -1] == tokenizer.token_to_id("[SEP]")


def test_empty_text_uses_research_fallback(tokenizer: Tokenizer) -> None:
    encoder = TextEncoder(tokenizer, max_length=16)
    empty = encoder.encode(["   "])
    fallback = encoder.encode([EMPTY_TEXT_FALLBACK])
    np.testing.assert_array_equal(empty.input_ids, fallback.input_ids)


def test_round_trip_through_tokenizer_json(tokenizer: Tokenizer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    a = TextEncoder(tokenizer, 12).encode(["contrast enhanced ct"])
    b = TextEncoder.from_file(path, 12).encode(["contrast enhanced ct"])
    np.testing.assert_array_equal(a.input_ids, b.input_ids)


@pytest.mark.parametrize(
    ("longest", "maximum", "expected"),
    [(1, 128, 16), (16, 128, 16), (17, 128, 32), (27, 128, 32), (120, 128, 128), (9, 8, 8)],
)
def test_bucketed_length_rounds_up_to_16_capped(longest: int, maximum: int, expected: int) -> None:
    assert bucketed_length(longest, maximum) == expected


def test_trim_padding_keeps_every_real_token(tokenizer: Tokenizer) -> None:
    encoder = TextEncoder(tokenizer, 64)
    texts = ["axial ct", "contrast enhanced mr image of the brain with a ring enhancing lesion"]
    encoded = encoder.encode(texts)
    ids, mask = trim_padding(encoded.input_ids, encoded.attention_mask)
    longest = max(encoded.token_counts)
    assert ids.shape == mask.shape == (2, bucketed_length(longest, 64)) and ids.shape[1] < 64
    assert (mask.sum(axis=1) == encoded.attention_mask.sum(axis=1)).all()
    assert (encoded.input_ids[:, ids.shape[1] :] == encoder.pad_id).all()  # only padding cut
    np.testing.assert_array_equal(ids, encoded.input_ids[:, : ids.shape[1]])
