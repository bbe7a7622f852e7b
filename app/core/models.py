"""Know a GGUF model before llama.cpp touches it.

llama.cpp aborts the whole process on some malformed inputs, so every model file is
inspected and validated here first: magic, version, truncation, architecture, tokenizer.
Only the header is read (a few MB at most, even for a 4 GB model); weights stay on disk.

``gguf.GGUFReader`` would also work, but it builds one numpy array per vocabulary entry and
takes about a second for a 30k vocabulary (ten for Gemma's 262k). The settings dialog
inspects models interactively, so we walk the header ourselves, skipping large arrays, and
take the type tables (value types, quantization block sizes) from the ``gguf`` package.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from app.core.errors import ModelError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
# Arrays longer than this (token lists, merges) are skipped, not kept.
_MAX_KEPT_ARRAY = 64

# Encoders that read the whole text at once; everything else is treated as causal.
NON_CAUSAL_ARCHS = frozenset(
    {
        "bert",
        "modern-bert",
        "nomic-bert",
        "nomic-bert-moe",
        "neo-bert",
        "jina-bert-v2",
        "jina-bert-v3",
        "eurobert",
        "t5encoder",
    }
)
# Known to llama.cpp but not text models: they cannot embed text.
NON_TEXT_ARCHS = frozenset({"clip", "wavtokenizer-dec"})
KNOWN_ARCHS = frozenset(gguf.MODEL_ARCH_NAMES.values())

POOLING_NAMES = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}
POOLING_IDS = {name: num for num, name in POOLING_NAMES.items()}
# Longest chunk we will ever embed, whatever the model's trained context. Longer windows
# cost quadratic attention time and memory and do not help code search.
MAX_TOKENS_CAP = 2048


@dataclass(frozen=True)
class Preset:
    """How a family of models expects to be used."""

    key: str
    label: str
    query_prefix: str = ""
    document_prefix: str = ""
    pooling: str | None = None  # used when the GGUF does not say
    max_tokens: int | None = None  # trained sequence length, when shorter than the context
    match: tuple[str, ...] = ()  # lower-case substrings of the model's name or file name


DEFAULT_PRESET = Preset(
    "codelamp-code",
    "CodeLamp code model (default)",
    pooling="mean",
    max_tokens=256,
    match=("codelamp-code",),
)
_CODE_QUERY = "Represent this query for searching relevant code: "
PRESETS = (
    DEFAULT_PRESET,
    Preset(
        "all-minilm-l6-v2",
        "all-MiniLM-L6-v2 (base)",
        pooling="mean",
        max_tokens=256,
        match=("all-minilm-l6-v2",),
    ),
    Preset(
        "nomic-embed-code",
        "nomic-embed-code",
        query_prefix=_CODE_QUERY,
        pooling="last",
        match=("nomic-embed-code",),
    ),
    Preset(
        "coderankembed",
        "CodeRankEmbed",
        query_prefix=_CODE_QUERY,
        pooling="cls",
        match=("coderankembed",),
    ),
    Preset(
        "nomic-embed-text",
        "nomic-embed-text v1.5",
        query_prefix="search_query: ",
        document_prefix="search_document: ",
        pooling="mean",
        match=("nomic-embed-text",),
    ),
    Preset(
        "bge",
        "BGE small/base v1.5",
        query_prefix="Represent this sentence for searching relevant passages: ",
        pooling="cls",
        max_tokens=512,
        match=("bge-small", "bge-base"),
    ),
    Preset(
        "jina-code",
        "jina-embeddings-v2-base-code",
        pooling="mean",
        match=("jina-embeddings-v2-base-code",),
    ),
)
GENERIC_PRESET = Preset("generic", "Other GGUF model")


@dataclass
class ModelInfo:
    """What a GGUF file is, read from its header."""

    path: Path
    file_size: int
    gguf_version: int
    architecture: str
    name: str
    metadata: dict[str, Any] = field(repr=False)
    tensor_count: int
    param_count: int
    quantization: str
    embedding_dim: int
    context_length: int
    causal: bool
    pooling: str
    preset: Preset

    @property
    def max_tokens(self) -> int:
        """Longest input, in tokens including special ones, that we will feed the model."""
        limit = self.context_length or MAX_TOKENS_CAP
        from_file = self.metadata.get("codelamp.max_tokens")
        for cap in (from_file, self.preset.max_tokens, MAX_TOKENS_CAP):
            if cap:
                limit = min(limit, int(cap))
        return limit

    def model_id_for(self, digest: str) -> str:
        """The id caches and indexes are keyed by, given the SHA-256 of the whole file
        (:mod:`app.core.identity`). The header alone cannot tell two files apart."""
        return f"{self.name}-{self.quantization}-{digest[:12]}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "name": self.name,
            "architecture": self.architecture,
            "file_size": self.file_size,
            "param_count": self.param_count,
            "quantization": self.quantization,
            "embedding_dim": self.embedding_dim,
            "context_length": self.context_length,
            "max_tokens": self.max_tokens,
            "pooling": self.pooling,
            "causal": self.causal,
            "preset": self.preset.key,
            "query_prefix": self.preset.query_prefix,
            "document_prefix": self.preset.document_prefix,
        }


class _Cursor:
    """Reads little-endian GGUF values from a buffer; running off the end means truncation."""

    def __init__(self, buf: mmap.mmap, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise _truncated(self.path, self.pos + size, len(self.buf))
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def skip(self, size: int) -> None:
        if self.pos + size > len(self.buf):
            raise _truncated(self.path, self.pos + size, len(self.buf))
        self.pos += size

    def string(self) -> str:
        n = self.take("<Q")
        start = self.pos
        self.skip(n)
        return bytes(self.buf[start : self.pos]).decode("utf-8", errors="replace")


_SCALARS = {
    gguf.GGUFValueType.UINT8: "<B",
    gguf.GGUFValueType.INT8: "<b",
    gguf.GGUFValueType.UINT16: "<H",
    gguf.GGUFValueType.INT16: "<h",
    gguf.GGUFValueType.UINT32: "<I",
    gguf.GGUFValueType.INT32: "<i",
    gguf.GGUFValueType.FLOAT32: "<f",
    gguf.GGUFValueType.BOOL: "<?",
    gguf.GGUFValueType.UINT64: "<Q",
    gguf.GGUFValueType.INT64: "<q",
    gguf.GGUFValueType.FLOAT64: "<d",
}


@dataclass(frozen=True)
class ArrayInfo:
    """A long array in the header (e.g. the vocabulary), recorded by length only."""

    length: int


def _value(cur: _Cursor, vtype: int) -> Any:
    vtype = gguf.GGUFValueType(vtype)
    if vtype == gguf.GGUFValueType.STRING:
        return cur.string()
    if vtype != gguf.GGUFValueType.ARRAY:
        return cur.take(_SCALARS[vtype])
    etype, count = gguf.GGUFValueType(cur.take("<I")), cur.take("<Q")
    if count > _MAX_KEPT_ARRAY:
        if etype == gguf.GGUFValueType.STRING:
            for _ in range(count):
                cur.skip(cur.take("<Q"))
        elif etype == gguf.GGUFValueType.ARRAY:
            raise ValueError("nested arrays are not supported")
        else:
            cur.skip(count * struct.calcsize(_SCALARS[etype]))
        return ArrayInfo(count)
    return [_value(cur, etype) for _ in range(count)]


def _truncated(path: Path, needed: int, have: int) -> ModelError:
    return ModelError(
        f"{path} is truncated: it needs at least {needed:,} bytes but has {have:,}. "
        "The download or copy was cut short; copy the file again."
    )


def preset_for(*names: str) -> Preset:
    """The preset of the first family any of these names (model name, file name) match."""
    haystack = " ".join(names).lower()
    return next((p for p in PRESETS if any(m in haystack for m in p.match)), GENERIC_PRESET)


def find_model_file(name: str) -> Path | None:
    """A GGUF file in the models folders that is the model called ``name`` (as a server
    lists it): the same file name, or the same known family. None if there is none."""
    from app import paths

    wanted, family = name.lower().removesuffix(".gguf"), preset_for(name)
    for folder in (paths.models_dir(), paths.bundled_models_dir()):
        files = sorted(folder.glob("*.gguf")) if folder and folder.is_dir() else []
        for path in files:
            if path.stem.lower() == wanted or (
                family is not GENERIC_PRESET and preset_for(path.name) is family
            ):
                return path
    return None


def inspect_model(path: str | Path) -> ModelInfo:
    """Read and validate a GGUF header. Raises ModelError with a message for the user."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"No model file at {path}. Check the path.")
    if path.is_dir():
        raise ModelError(f"{path} is a folder; choose a .gguf model file.")
    try:
        size = path.stat().st_size
        if size == 0:
            raise ModelError(f"{path} is empty (0 bytes); it is not a model. Copy it again.")
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(path, buf, size)
    except OSError as exc:
        raise ModelError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except (ValueError, KeyError, struct.error) as exc:
        raise ModelError(f"{path} is not a valid GGUF file ({exc}).") from exc


def _parse(path: Path, buf: mmap.mmap, size: int) -> ModelInfo:
    if buf[:4] != GGUF_MAGIC:
        raise ModelError(
            f"{path} is not a GGUF model file (it starts with {bytes(buf[:4])!r}). "
            "CodeLamp needs an embedding model in GGUF format."
        )
    cur = _Cursor(buf, path)
    cur.skip(4)
    version = cur.take("<I")
    if version not in SUPPORTED_VERSIONS:
        raise ModelError(f"{path} uses GGUF version {version}; only versions 2 and 3 work.")
    n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        meta[key] = _value(cur, cur.take("<I"))

    params, data_end = 0, 0
    type_counts: dict[str, int] = {}  # quantization type -> matrix weights of that type
    for _ in range(n_tensors):
        cur.string()  # tensor name
        dims = [cur.take("<Q") for _ in range(cur.take("<I"))]
        qtype = gguf.GGMLQuantizationType(cur.take("<I"))
        offset = cur.take("<Q")
        n = 1
        for d in dims:
            n *= d
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        params += n
        data_end = max(data_end, offset + n // block * type_size)
        if len(dims) >= 2:
            type_counts[qtype.name] = type_counts.get(qtype.name, 0) + n

    align = int(meta.get("general.alignment", DEFAULT_ALIGNMENT))
    data_start = -(-cur.pos // align) * align
    if data_start + data_end > size:
        raise _truncated(path, data_start + data_end, size)
    return _describe(path, size, version, meta, n_tensors, params, type_counts)


def _describe(
    path: Path,
    size: int,
    version: int,
    meta: dict[str, Any],
    n_tensors: int,
    params: int,
    type_counts: dict[str, int],
) -> ModelInfo:
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelError(f"{path} does not say which architecture it is; it is not a model.")
    if arch not in KNOWN_ARCHS or arch in NON_TEXT_ARCHS:
        raise ModelError(
            f"{path} is a {arch!r} model, which llama.cpp cannot use to embed text. "
            "Choose a text embedding model (e.g. all-MiniLM, nomic-embed-code, bge)."
        )
    if "tokenizer.ggml.model" not in meta or "tokenizer.ggml.tokens" not in meta:
        raise ModelError(f"{path} has no tokenizer inside; it cannot embed text.")
    dim = meta.get(f"{arch}.embedding_length")
    if not isinstance(dim, int) or dim <= 0:
        raise ModelError(f"{path} does not give its embedding size ({arch}.embedding_length).")
    if arch in NON_CAUSAL_ARCHS and not meta.get("tokenizer.ggml.token_type_count", 1):
        raise ModelError(f"{path}: a {arch} model needs tokenizer.ggml.token_type_count > 0.")

    name = str(meta.get("general.name") or meta.get("general.basename") or path.stem)
    preset = preset_for(name, str(meta.get("general.basename", "")), path.name)

    causal = meta.get(f"{arch}.attention.causal")
    causal = bool(causal) if causal is not None else arch not in NON_CAUSAL_ARCHS
    pooling = POOLING_NAMES.get(meta.get(f"{arch}.pooling_type", 0), "none")
    if pooling in ("none", "rank"):
        pooling = preset.pooling or ("last" if causal else "mean")

    return ModelInfo(
        path=path.resolve(),
        file_size=size,
        gguf_version=version,
        architecture=arch,
        name=name,
        metadata=meta,
        tensor_count=n_tensors,
        param_count=params,
        quantization=_quantization(meta, type_counts),
        embedding_dim=dim,
        context_length=int(meta.get(f"{arch}.context_length", 0) or 0),
        causal=causal,
        pooling=pooling,
        preset=preset,
    )


def _quantization(meta: dict, type_counts: dict[str, int]) -> str:
    ftype = meta.get("general.file_type")
    if isinstance(ftype, int):
        try:
            return gguf.LlamaFileType(ftype).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # No (known) file type: name it after the type holding most matrix weights.
    return max(type_counts, key=type_counts.__getitem__) if type_counts else "unknown"


def check_dims(label: str, dims: int, expected_dims: int, index_model: str, where: str) -> None:
    """Refuse to put vectors of the wrong size into an existing index. ``label`` names
    what makes ``dims``-dimension vectors (a model file, a server)."""
    if dims != expected_dims:
        raise ModelError(
            f"{label} makes {dims}-dimension vectors, but the index "
            f"for {where} holds {expected_dims}-dimension vectors from {index_model}. "
            "Re-index the project with the new model, or switch back to the old one."
        )


def human_size(n: float) -> str:
    """1.5 GB style sizes, in powers of 1000 like file managers show."""
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"
