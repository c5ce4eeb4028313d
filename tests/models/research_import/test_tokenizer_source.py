"""The research text model's tokenizer, found offline, tokenises exactly as the research code's
`AutoTokenizer` did: checked against transformers' own (pure-Python) BertTokenizer built from
the same vocabulary, on real captions and wound descriptions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import BertTokenizerLegacy as BertTokenizer  # the pure-Python one

from app.contract.text import TextEncoder
from models.data import load_samples
from models.research_import import tokenizer_source
from models.research_import.tokenizer_source import (
    TokenizerSourceError,
    check_vocabulary,
    resolve_tokenizer,
    uncased_bert_vocab,
)

RESEARCH_MAX_LENGTH = 256


def _research_ids(reference: BertTokenizer, texts: list[str]) -> list[list[int]]:
    """What the research dataset code produced (truncation to 256 incl. specials)."""
    out = reference(texts, truncation=True, max_length=RESEARCH_MAX_LENGTH)
    return [list(ids) for ids in out["input_ids"]]


def _ours(tokenizer_json: str, texts: list[str]) -> list[list[int]]:
    from tokenizers import Tokenizer

    encoded = TextEncoder(Tokenizer.from_str(tokenizer_json), RESEARCH_MAX_LENGTH).encode(texts)
    return [
        [int(i) for i, m in zip(ids, mask, strict=True) if m]
        for ids, mask in zip(encoded.input_ids, encoded.attention_mask, strict=True)
    ]


@pytest.mark.parametrize("backbone", ["bert-mini", "bert-tiny", "minilm", "distilbert"])
def test_uncased_models_get_the_bert_vocabulary_verified_by_hash(backbone: str) -> None:
    resolved = resolve_tokenizer(backbone)
    assert resolved.provenance["sha256"] == tokenizer_source.UNCASED_BERT_VOCAB_SHA256
    assert resolved.tokenizer.get_vocab_size() == 30522
    assert resolved.tokenizer.token_to_id("[CLS]") == 101


def test_matches_transformers_bert_tokenizer_on_real_texts(
    medpix_root: Path, wound_root: Path
) -> None:
    texts = [s.text for s in load_samples("medpix", medpix_root, "dev")[:120]]
    texts += [s.text for s in load_samples("wound", wound_root, "dev")[:80]]
    texts += ["Naïve café résumé — ÀÉÎ", "x " * 400, "CT: 3.5cm mass; (L) kidney"]
    reference = BertTokenizer(vocab_file=str(uncased_bert_vocab()), do_lower_case=True)
    ours = _ours(resolve_tokenizer("bert-mini").tokenizer.to_str(), texts)
    assert ours == _research_ids(reference, texts)


def test_cased_vocab_file_keeps_case(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    shutil.copyfile(uncased_bert_vocab(), vocab)  # stands in for a cased vocabulary
    resolved = resolve_tokenizer("bio-clinical-bert", vocab)
    reference = BertTokenizer(vocab_file=str(vocab), do_lower_case=False)
    texts = ["CT Abdomen shows Mass", "MRI Brain"]
    assert _ours(resolved.tokenizer.to_str(), texts) == _research_ids(reference, texts)
    assert resolved.provenance == {
        "source": "--tokenizer",
        "file": "vocab.txt",
        "sha256": tokenizer_source.UNCASED_BERT_VOCAB_SHA256,
    }


def test_hugging_face_cache_folder_is_searched(tmp_path: Path) -> None:
    snapshot = tmp_path / "models--org--model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    shutil.copyfile(uncased_bert_vocab(), snapshot / "vocab.txt")
    (snapshot / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    resolved = resolve_tokenizer("bio-clinical-bert", tmp_path / "models--org--model")
    assert _ours(resolved.tokenizer.to_str(), ["MRI Brain"]) == [[101, 27011, 4167, 102]]


def test_tokenizer_json_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(resolve_tokenizer("bert-mini").tokenizer.to_str(), encoding="utf-8")
    assert resolve_tokenizer("distilbert", path).provenance["file"] == "tokenizer.json"


def test_own_vocabulary_without_a_file_names_what_to_pass() -> None:
    with pytest.raises(TokenizerSourceError) as err:
        resolve_tokenizer("bio-clinical-bert")
    message = str(err.value)
    assert "emilyalsentzer/Bio_ClinicalBERT" in message and "cased, 28,996" in message
    assert "--tokenizer" in message and "vocab.txt" in message


def test_a_changed_package_vocabulary_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer_source, "UNCASED_BERT_VOCAB_SHA256", "0" * 64)
    with pytest.raises(TokenizerSourceError, match="sha256 differs"):
        resolve_tokenizer("bert-mini")


def test_bad_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenizerSourceError, match="not found"):
        resolve_tokenizer("bert-mini", tmp_path / "absent.txt")
    with pytest.raises(TokenizerSourceError, match=r"holds no tokenizer\.json"):
        resolve_tokenizer("bert-mini", tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(TokenizerSourceError, match=r"expected a tokenizer\.json"):
        resolve_tokenizer("bert-mini", weights)


def test_vocabulary_must_fit_the_word_table() -> None:
    tokenizer = resolve_tokenizer("bert-mini").tokenizer
    check_vocabulary(tokenizer, 30522, "bert-mini")
    with pytest.raises(TokenizerSourceError, match="30,522 tokens but 'bio-clinical-bert'"):
        check_vocabulary(tokenizer, 28996, "bio-clinical-bert")
