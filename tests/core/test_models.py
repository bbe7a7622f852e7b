"""Inspecting and validating GGUF files before llama.cpp ever opens them."""

from __future__ import annotations

import struct

import gguf
import pytest
from tiny_gguf import write_tiny_gguf

from app.core.embedder import Embedder
from app.core.errors import ModelError
from app.core.models import PRESETS, check_dims, human_size, inspect_model


@pytest.mark.parametrize(
    ("which", "name", "quant", "preset"),
    [
        ("default_model", "codelamp-code-v1", "Q8_0", "codelamp-code"),
        ("base_model", "all-MiniLM-L6-v2", "F16", "all-minilm-l6-v2"),
    ],
)
def test_default_and_base_model_inspection(request, which, name, quant, preset):
    path = request.getfixturevalue(which)
    info = inspect_model(path)
    assert info.architecture == "bert"
    assert (info.name, info.quantization, info.preset.key) == (name, quant, preset)
    assert (info.embedding_dim, info.context_length, info.max_tokens) == (384, 512, 256)
    assert info.pooling == "mean" and not info.causal
    assert 22_000_000 < info.param_count < 23_000_000  # MiniLM-L6 has 22.7M parameters
    assert info.file_size == path.stat().st_size


def test_causal_q4_k_m_inspection(gemma_model):
    info = inspect_model(gemma_model)
    assert info.architecture == "gemma3"
    assert info.causal
    assert info.pooling == "last"
    assert info.embedding_dim == 640
    assert info.quantization == "Q4_K_M"
    assert info.max_tokens == 2048, "a 32k context is capped for chunk embedding"


@pytest.mark.parametrize("which", ["default_model", "gemma_model"])
def test_header_parser_agrees_with_gguf_reader(which, request):
    path = request.getfixturevalue(which)
    info = inspect_model(path)
    reader = gguf.GGUFReader(path)
    assert info.tensor_count == len(reader.tensors)
    assert info.param_count == sum(int(t.n_elements) for t in reader.tensors)
    assert info.architecture == reader.get_field("general.architecture").contents()
    arch = info.architecture
    assert info.embedding_dim == reader.get_field(f"{arch}.embedding_length").contents()


# --- bad input: every case names the file and the process survives ------------------


def _cut(src, dst, n):
    return _write(dst, src.read_bytes()[:n])


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d, m: d / "missing.gguf", "No model file"),
        (lambda d, m: d, "is a folder"),
        (lambda d, m: _write(d / "empty.gguf", b""), "empty"),
        (lambda d, m: _write(d / "t.gguf", b"hello, I am text"), "not a GGUF"),
        (lambda d, m: _cut(m, d / "cut10.gguf", 10), "truncated"),
        (lambda d, m: _cut(m, d / "cut_header.gguf", 200_000), "truncated"),
        (lambda d, m: _cut(m, d / "cut_tensors.gguf", m.stat().st_size // 2), "truncated"),
        (lambda d, m: _cut(m, d / "last_byte.gguf", m.stat().st_size - 1), "truncated"),
    ],
    ids=[
        "missing",
        "folder",
        "empty",
        "text",
        "10-bytes",
        "mid-header",
        "mid-tensors",
        "one-byte-short",
    ],
)
def test_bad_files_get_clear_errors(tmp_path, default_model, make, message):
    path = make(tmp_path, default_model)
    with pytest.raises(ModelError, match=message) as err:
        inspect_model(path)
    assert str(path) in str(err.value)
    with pytest.raises(ModelError):
        Embedder(path)  # the embedder validates before llama.cpp sees the file


def test_unsupported_gguf_version(tmp_path, default_model):
    data = bytearray(default_model.read_bytes()[:4096])
    data[4:8] = struct.pack("<I", 99)
    path = tmp_path / "v99.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="version 99"):
        inspect_model(path)


@pytest.mark.parametrize("arch", ["clip", "not-a-real-arch"])
def test_architectures_that_cannot_embed_text(tmp_path, arch):
    path = write_tiny_gguf(tmp_path / f"{arch}.gguf", arch=arch)
    with pytest.raises(ModelError, match="cannot use to embed text") as err:
        inspect_model(path)
    assert arch in str(err.value)


def test_model_without_tokenizer(tmp_path):
    path = write_tiny_gguf(tmp_path / "notok.gguf", tokenizer=False)
    with pytest.raises(ModelError, match="no tokenizer"):
        inspect_model(path)


def test_dims_mismatch_with_an_existing_index(default_model):
    info = inspect_model(default_model)
    # same size: fine
    check_dims(info.path.name, info.embedding_dim, 384, "all-MiniLM-L6-v2", "~/src/app")
    with pytest.raises(ModelError, match="768-dimension vectors from nomic") as err:
        check_dims(info.path.name, info.embedding_dim, 768, "nomic-embed-text", "~/src/app")
    assert "Re-index" in str(err.value)


# --- presets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key", "query_prefix", "doc_prefix"),
    [
        (
            "nomic-embed-code",
            "nomic-embed-code",
            "Represent this query for searching relevant code: ",
            "",
        ),
        (
            "CodeRankEmbed",
            "coderankembed",
            "Represent this query for searching relevant code: ",
            "",
        ),
        ("nomic-embed-text-v1.5", "nomic-embed-text", "search_query: ", "search_document: "),
        (
            "bge-small-en-v1.5",
            "bge",
            "Represent this sentence for searching relevant passages: ",
            "",
        ),
        ("jina-embeddings-v2-base-code", "jina-code", "", ""),
        ("all-MiniLM-L6-v2", "all-minilm-l6-v2", "", ""),
        ("some-other-embedder", "generic", "", ""),
    ],
)
def test_presets_from_metadata_name(tmp_path, name, key, query_prefix, doc_prefix):
    info = inspect_model(write_tiny_gguf(tmp_path / "model.gguf", name=name))
    assert info.preset.key == key
    assert info.preset.query_prefix == query_prefix
    assert info.preset.document_prefix == doc_prefix


def test_preset_from_file_name_when_metadata_is_silent(tmp_path):
    path = write_tiny_gguf(tmp_path / "nomic-embed-code.Q4_K_M.gguf", arch="qwen2", name=None)
    info = inspect_model(path)
    assert info.preset.key == "nomic-embed-code"
    assert info.causal and info.pooling == "last"


def test_pooling_from_metadata_beats_preset(tmp_path):
    path = write_tiny_gguf(
        tmp_path / "m.gguf", name="CodeRankEmbed", extra={"bert.pooling_type": 1}
    )
    assert inspect_model(path).pooling == "mean"
    path = write_tiny_gguf(tmp_path / "n.gguf", name="CodeRankEmbed")
    assert inspect_model(path).pooling == "cls"


def test_every_preset_is_reachable():
    keys = [p.key for p in PRESETS]
    assert len(keys) == len(set(keys))
    assert all(p.match for p in PRESETS)


def test_human_size():
    assert human_size(512) == "512 B"
    assert human_size(45_830_048) == "45.8 MB"
    assert human_size(4_380_000_000) == "4.38 GB"
