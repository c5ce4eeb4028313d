"""WordPiece training on real captions, save/load round trips, serving compatibility."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from app.contract.text import TextEncoder
from models.data import load_medpix
from models.tokenizer import (
    SPECIAL_TOKENS,
    load_tokenizer,
    token_length_percentiles,
    train_wordpiece,
)


@pytest.fixture(scope="module")
def captions(medpix_root: Path) -> list[str]:
    return [s.text for s in load_medpix(medpix_root, "dev")]


@pytest.fixture(scope="module")
def trained(captions: list[str]) -> Tokenizer:
    return train_wordpiece(captions, vocab_size=600)


def test_specials_template_and_lowercasing(trained: Tokenizer) -> None:
    assert [trained.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    enc = trained.encode("Axial CT of the HEAD")
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert enc.tokens[1:3] == ["axial", "ct"]
    assert 600 >= trained.get_vocab_size() > 100


def test_unseen_words_split_into_pieces_or_unk(trained: Tokenizer) -> None:
    tokens = trained.encode("zzqxv").tokens[1:-1]
    assert tokens == ["[UNK]"] or all(t == "[UNK]" or t.startswith("##") for t in tokens[1:])


def test_json_round_trip_and_serving_encoder(trained, captions, tmp_path) -> None:
    path = tmp_path / "tokenizer.json"
    trained.save(str(path))
    loaded = load_tokenizer(path)
    assert loaded.encode(captions[0]).ids == trained.encode(captions[0]).ids
    encoded = TextEncoder.from_file(path, 16).encode([captions[0], ""])
    assert encoded.input_ids.shape == (2, 16)
    assert encoded.input_ids[0, 0] == trained.token_to_id("[CLS]")
    assert encoded.input_ids[1, : encoded.attention_mask[1].sum()].tolist() == (
        trained.encode("No description available").ids
    )


def test_vocab_txt_gives_the_same_ids(trained, captions, tmp_path) -> None:
    vocab = sorted(trained.get_vocab().items(), key=lambda item: item[1])
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(token for token, _ in vocab) + "\n", encoding="utf-8")
    from_vocab = load_tokenizer(path)
    for text in captions[:20]:
        assert from_vocab.encode(text).ids == trained.encode(text).ids


def test_bad_inputs_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        load_tokenizer(tmp_path / "nope.json")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks special token\(s\) \['\[UNK\]'"):
        load_tokenizer(vocab)


def test_length_percentiles_are_ordered(trained, captions) -> None:
    pct = token_length_percentiles(trained, captions)
    assert pct["p50"] <= pct["p95"] <= pct["p99"] <= pct["p100"]
    assert pct["p100"] == max(len(trained.encode(t).ids) for t in captions)


def test_length_percentiles_ignore_a_shipped_padding_config(trained, captions) -> None:
    padded = Tokenizer.from_str(trained.to_str())
    padded.enable_padding(length=512)
    padded.enable_truncation(max_length=512)
    assert token_length_percentiles(padded, captions) == token_length_percentiles(trained, captions)
