"""Text -> unit vectors, with llama.cpp, safely.

Why not ``llama_cpp.Llama.embed``: it truncates to n_batch rather than the trained context,
packs several sequences into one batch (slower for BERT: attention spans the whole ubatch,
so 16 packed sequences ran at 1.9 chunks/s against 24 one at a time), and its loader has no
progress callback. This module uses llama.cpp's C API through llama-cpp-python's ctypes
bindings instead, and guards every input that could abort the process:

* every token list is cut to ``max_tokens``, which never exceeds the trained context;
* ``n_ctx = n_batch = n_ubatch``, one sequence per decode, so a BERT-type model never sees
  more tokens in one ubatch than it allows;
* models are inspected (:mod:`app.core.models`) before llama.cpp opens them;
* the weights are read into memory, not mapped from the file: a model file truncated
  while mapped kills the process with SIGBUS at the next embedding. Before each batch of
  documents and each query the file is checked to still hold the bytes the model id
  names; if it does not, embedding stops with a ModelError, so vectors of another file
  never go out under this one's id.

The model loads on first use, not at import or start-up. Loading reports real progress:
hashing the file when its digest is not known yet (:mod:`app.core.identity`; the model id
names the exact bytes) and then llama.cpp's own load callback, and either phase can be
cancelled.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from app import paths
from app.core import faults, identity
from app.core.cpu import FairShare, physical_cores
from app.core.errors import CodeLampError, ModelError
from app.core.models import POOLING_IDS, ModelInfo, Preset, inspect_model

if TYPE_CHECKING:
    from llama_cpp import llama_batch, llama_context_p, llama_model_p

log = logging.getLogger(__name__)

# progress(fraction 0..1, message)
LoadProgress = Callable[[float, str], None]
_READ_SHARE = 0.5  # of the progress bar: hashing the file, when needed; the rest is llama.cpp's
_REPORT_EVERY = 64 * identity.BLOCK  # bytes hashed between two progress reports


class LoadCancelled(CodeLampError):
    """The user cancelled loading the model."""


# Every index records the vector its model gives this text (``probe`` in its meta). Two
# embedders whose probes agree to this cosine run the same model: a server that silently
# swapped models is caught before it writes, and an index built on a server can be
# searched with a local copy of the model (float rounding on another machine, or a GPU,
# moves the probe by far less than 0.01; another model moves it far more).
PROBE_TEXT = 'def retry_upload(path, attempts=3):\n    """Send a file again after a failure."""'
PROBE_MIN_COSINE = 0.99


def probe_cosine(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> float:
    """The cosine of two probe vectors (an embedder's, or one an index records as a
    list); -1 when their sizes differ."""
    u, v = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if u.shape != v.shape or not u.size:
        return -1.0
    return float(u @ v / max(float(np.linalg.norm(u) * np.linalg.norm(v)), 1e-12))


def missing_cpu_features(required: set[str], cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The ``required`` CPU flags (``/proc/cpuinfo`` names) this CPU lacks; [] when the
    flags cannot be read (not Linux): then nothing is claimed missing."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        None,
    )
    return [] if flags is None else sorted(required - set(flags))


def _check_cpu() -> None:
    """A packaged build's llama.cpp is compiled for a CPU baseline (the bundle's
    ``cpu-features`` file). On an older CPU it would die of an illegal instruction at the
    first embedding, so say so first."""
    bundle = paths.bundle_dir()
    listing = bundle / "cpu-features" if bundle else None
    if listing is None or not listing.is_file():
        return
    missing = missing_cpu_features(set(listing.read_text(encoding="ascii").split()))
    if missing:
        raise ModelError(
            f"This CodeLamp package needs a CPU with {', '.join(f.upper() for f in missing)} "
            "(Intel Core since 2013, AMD since 2015), which this one does not have. Install "
            "CodeLamp from source instead (README: ./scripts/run.sh), which builds llama.cpp for "
            "this CPU."
        )


# llama.cpp's CPU backend is built with OpenMP here. By default an idle OpenMP thread
# spins 300,000 times before it sleeps, at every barrier and between two embeddings: on a
# busy laptop that burns cores other programs (and other indexers) need. 3,000 spins (a
# few microseconds) still cover the short waits inside one embedding, so the unloaded rate
# is kept (43-49 chunks/s against 39-49 at the default, scripts/bench_contention.py),
# where never spinning (OMP_WAIT_POLICY=PASSIVE) cost 16%. Set before the library loads,
# unless the user chose otherwise.
OPENMP_ENV = {"GOMP_SPINCOUNT": "3000"}


def _llama() -> ModuleType:
    """Import the bindings on first use: loading the native library costs start-up time."""
    _check_cpu()
    for name, value in OPENMP_ENV.items():
        os.environ.setdefault(name, value)
    import llama_cpp

    _install_log_handler(llama_cpp)
    return llama_cpp


_log_callback = None  # kept alive: llama.cpp holds a raw pointer to it
_backend_lock = threading.Lock()


def _install_log_handler(llama_cpp: ModuleType) -> None:
    """Send llama.cpp's chatter to Python logging instead of the user's terminal."""
    global _log_callback
    with _backend_lock:
        if _log_callback is not None:
            return

        @llama_cpp.llama_log_callback
        def forward(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
            message = text.decode("utf-8", errors="replace").rstrip()
            if message:
                # ggml levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation
                log.log(logging.WARNING if level in (3, 4) else logging.DEBUG, message)

        _log_callback = forward
        llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        # llama.cpp's threads do the heavy work. numpy's BLAS threads, left at their
        # default, spin after every matrix product and steal those cores: a 4 ms query
        # embedding then takes 100 ms (docs/PERFORMANCE.md). Our matrices are small.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")


class Embedder:
    """A GGUF embedding model. Thread-safe; the model loads on first use.

    Vectors are float32 and L2-normalised, so a dot product is the cosine similarity.

    Queries go first: documents are embedded one text at a time, and a document waits
    while a query is waiting, so a search never queues behind an indexing batch. Queries
    use ``threads`` cores; documents only the cores other processes leave free
    (:class:`app.core.cpu.FairShare`).
    """

    def __init__(self, model_path: str | Path, threads: int | None = None) -> None:
        self.info: ModelInfo = inspect_model(model_path)  # raises ModelError, never aborts
        self.threads = threads or physical_cores()
        self.fair_share = FairShare(self.threads)
        self._lock = threading.RLock()  # the native handles: one text at a time
        self._queries = 0  # queries waiting for or holding the model
        self._queries_done = threading.Condition()
        self._handles: _Handles | None = None
        self._file_lock = threading.Lock()
        self._version = identity.FileVersion.of(self.info.path)  # as inspected, then as loaded
        self._digest: str | None = None  # SHA-256 of the bytes in use, once known
        self._probe: np.ndarray | None = None

    batch_size = 16  # texts the indexer hands over at once (it checks for cancel between)

    # What callers can know without loading the model.
    @property
    def dim(self) -> int:
        return self.info.embedding_dim

    @property
    def label(self) -> str:
        """What makes the vectors, for messages."""
        return self.info.path.name

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def preset(self) -> Preset:
        return self.info.preset

    @property
    def model_path(self) -> Path:
        return self.info.path

    @property
    def resident_bytes(self) -> int:
        """Memory the loaded weights take (they are read into memory, not mapped)."""
        return self.info.file_size

    @property
    def max_tokens(self) -> int:
        return self.info.max_tokens

    @property
    def model_id(self) -> str:
        """Names the exact bytes this embedder embeds with: caches and indexes are keyed by
        it. The first call hashes the file, unless its digest is remembered or loading
        has already hashed it."""
        return self.info.model_id_for(self._digest or self._check_file())

    @property
    def loaded(self) -> bool:
        return self._handles is not None

    def load(
        self,
        progress: LoadProgress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        """Load now (otherwise the first embed does). Idempotent."""
        progress = progress or (lambda f, m: None)
        cancelled = cancelled or (lambda: False)
        with self._lock:
            if self._handles is not None:
                return
            start = self._hash_for_load(progress, cancelled)
            handles = _Handles.open(self.info, self.threads, progress, cancelled, start)
            try:
                self._check_file()  # llama.cpp read the bytes the id names
            except BaseException:
                handles.free()
                raise
            self._handles = handles

    def _hash_for_load(self, progress: LoadProgress, cancelled: Callable[[], bool]) -> float:
        """Know the file's digest before loading: hash it (cancellable, with progress)
        unless it is known. Returns the share of the progress bar that took."""
        name, size = self.info.path.name, max(self.info.file_size, 1)
        hashed = False

        def on_block(done: int) -> None:
            nonlocal hashed
            if cancelled():
                raise LoadCancelled("Loading the model was cancelled.")
            if not hashed or done % _REPORT_EVERY < identity.BLOCK or done >= size:
                progress(_READ_SHARE * min(done / size, 1.0), f"Reading {name}…")
            hashed = True

        self._check_file(on_block)
        return _READ_SHARE if hashed else 0.0

    def _check_file(self, on_block: identity.OnBlock | None = None) -> str:
        """The digest of the model file, as long as it holds the bytes this embedder was
        opened with (or has loaded); a ModelError once it does not."""
        path = self.info.path
        with self._file_lock:
            try:
                now = identity.FileVersion.of(path)
            except OSError as exc:
                raise self._changed(f"it cannot be read any more: {exc.strerror or exc}") from exc
            if now == self._version and self._digest is not None:
                return self._digest
            version, digest = identity.identify(path, on_block)
            if self._digest is None and version != self._version:
                raise self._changed("it was modified after CodeLamp read its header")
            if self._digest is not None and digest != self._digest:
                was = self._version.size
                raise self._changed(
                    f"it now has {version.size:,} bytes instead of {was:,}"
                    if version.size != was
                    else "its bytes differ"
                )
            self._version, self._digest = version, digest
            return digest

    def _changed(self, how: str) -> ModelError:
        return ModelError(
            f"The model file {self.info.path} changed while CodeLamp was using it ({how}). "
            "Embedding stopped so that vectors of two different models never mix. Put the "
            "original file back, or restart CodeLamp to use the new one (indexes are then "
            "rebuilt with it)."
        )

    def close(self) -> None:
        with self._lock:
            if self._handles is not None:
                self._handles.free()
                self._handles = None

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tokenize(self, text: str) -> list[int]:
        """The tokens the model will see for ``text``, special tokens and truncation included."""
        return self._loaded().vocabulary.tokens_for(text, self.max_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` needs, including special tokens, before any truncation.

        Safe to call from another thread while this embedder is embedding: tokenizing only
        reads the vocabulary, so it does not wait for the model.
        """
        return len(self._loaded().vocabulary.tokenize(text, add_special=True))

    def _loaded(self) -> _Handles:
        if self._handles is None:
            self.load()
        # load() sets the handles or raises; only a close() from another thread in between
        # can have cleared them again.
        if self._handles is None:
            raise ModelError(f"{self.info.path.name} was closed while in use.")
        return self._handles

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        prefix = self.info.preset.document_prefix
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if texts:
            self._check_file()
        for i, text in enumerate(texts):
            faults.point("embed")
            with self._queries_done:
                while self._queries:
                    self._queries_done.wait()
            with self._lock:
                out[i] = self._embed_one(prefix + text, i, self.fair_share.threads())
        return out

    def probe(self) -> np.ndarray:
        """This model's vector of :data:`PROBE_TEXT`."""
        if self._probe is None:
            self._probe = self.embed_documents([PROBE_TEXT])[0]
        return self._probe

    def expect(self, probe: Sequence[float] | None) -> None:
        """The index records ``probe`` for this model id. The id names the file's bytes,
        so there is nothing to check (servers are another matter: app.core.remote)."""

    def verify(self) -> None:
        """Before a batch is written: the vectors came from the model the id names. The
        file is checked before every batch it embeds (``_check_file``): nothing to add."""

    def embed_query(self, text: str) -> np.ndarray:
        self._check_file()
        with self._queries_done:
            self._queries += 1
        try:
            with self._lock:
                return self._embed_one(self.info.preset.query_prefix + text, 0, self.threads)
        finally:
            with self._queries_done:
                self._queries -= 1
                self._queries_done.notify_all()

    def _embed_one(self, text: str, i: int, threads: int) -> np.ndarray:
        """One text; the caller holds ``_lock``."""
        handles = self._loaded()
        handles.set_threads(threads)
        vec = handles.embed(handles.vocabulary.tokens_for(text, self.max_tokens))
        norm = float(np.linalg.norm(vec))
        if not np.isfinite(vec).all() or not np.isfinite(norm) or norm == 0.0:
            raise ModelError(
                f"{self.info.path.name} produced an invalid vector (NaN, inf or zero) "
                f"for input {i + 1} ({text[:60]!r}). The model file may be damaged "
                "or not an embedding model; try the default model."
            )
        return vec / norm


class Vocabulary:
    """A model's tokenizer, as llama.cpp runs it: what the model sees for a text."""

    def __init__(self, lib: ModuleType, model: llama_model_p) -> None:
        self.lib, self.vocab = lib, lib.llama_model_get_vocab(model)
        self._prefix, self._suffix = self._special_tokens()

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        data = text.encode("utf-8", errors="replace")
        cap = len(data) + 8  # never more tokens than bytes, plus special tokens
        buf = (self.lib.llama_token * cap)()
        n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, False)
        if n < 0:
            raise ModelError(f"Could not tokenize a {len(data)}-byte text.")
        return buf[:n]

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The special tokens the model wraps every text in (e.g. [CLS] ... [SEP])."""
        specials = self.tokenize("", add_special=True)
        n_prefix = 1 if specials and self.lib.llama_vocab_get_add_bos(self.vocab) else 0
        return specials[:n_prefix], specials[n_prefix:]

    def tokens_for(self, text: str, max_tokens: int) -> list[int]:
        """Tokens with special tokens, cut so the whole never exceeds ``max_tokens``."""
        body = self.tokenize(text, add_special=False)
        room = max_tokens - len(self._prefix) - len(self._suffix)
        tokens = self._prefix + body[:room] + self._suffix
        if not tokens:  # a causal model with no BOS, given an empty text
            tokens = [self.lib.llama_vocab_eos(self.vocab)]
        return tokens


class Tokenizer:
    """Only the vocabulary of a GGUF model (llama.cpp's ``vocab_only`` load: no weights,
    a fraction of a second): counts tokens exactly as the model would, for chunking texts
    that another process embeds (:mod:`app.core.remote`)."""

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self._lock = threading.Lock()
        self._model: llama_model_p | None = None
        self._vocab: Vocabulary | None = None

    def _loaded(self) -> Vocabulary:
        with self._lock:
            if self._vocab is None:
                lib = _llama()
                mparams = lib.llama_model_default_params()
                mparams.vocab_only = True
                mparams.load_mode = lib.LLAMA_LOAD_MODE_NONE
                model = lib.llama_model_load_from_file(str(self.info.path).encode(), mparams)
                if not model:
                    raise ModelError(
                        f"llama.cpp could not read the vocabulary of {self.info.path}."
                    )
                self._lib, self._model, self._vocab = lib, model, Vocabulary(lib, model)
            return self._vocab

    def count_tokens(self, text: str) -> int:
        return len(self._loaded().tokenize(text, add_special=True))

    def tokens_for(self, text: str, max_tokens: int) -> list[int]:
        return self._loaded().tokens_for(text, max_tokens)

    def close(self) -> None:
        with self._lock:
            if self._model is not None:
                self._lib.llama_model_free(self._model)
                self._model = self._vocab = None


class _Handles:
    """The native model, context and batch; every native call is made through here."""

    def __init__(
        self,
        lib: ModuleType,
        info: ModelInfo,
        model: llama_model_p,
        ctx: llama_context_p,
        batch: llama_batch,
        n_ctx: int,
        threads: int,
    ) -> None:
        self.lib, self.info, self.model, self.ctx, self.batch = lib, info, model, ctx, batch
        self.n_ctx, self.threads = n_ctx, threads
        self.vocabulary = Vocabulary(lib, model)
        self.memory = lib.llama_get_memory(ctx)
        self.n_embd = lib.llama_model_n_embd(model)
        self.has_encoder = lib.llama_model_has_encoder(model)
        self._tokens = np.ctypeslib.as_array(batch.token, shape=(n_ctx,))
        # Everything but the token ids is the same for every sequence: set it once.
        pos = np.ctypeslib.as_array(batch.pos, shape=(n_ctx,))
        pos[:] = np.arange(n_ctx, dtype=pos.dtype)
        np.ctypeslib.as_array(batch.n_seq_id, shape=(n_ctx,))[:] = 1
        np.ctypeslib.as_array(batch.logits, shape=(n_ctx,))[:] = 1
        for i in range(n_ctx):
            batch.seq_id[i][0] = 0

    @classmethod
    def open(
        cls,
        info: ModelInfo,
        threads: int,
        progress: LoadProgress,
        cancelled: Callable[[], bool],
        start: float,
    ) -> _Handles:
        """Load the model and make a context; llama.cpp's progress fills the bar from
        ``start`` to 1."""
        lib = _llama()

        @lib.llama_progress_callback
        def on_progress(fraction: float, _user: ctypes.c_void_p) -> bool:
            progress(start + (1 - start) * fraction, "Loading model…")
            return not cancelled()

        mparams = lib.llama_model_default_params()
        mparams.n_gpu_layers = 0
        # Read, not mapped (llama.cpp maps by default on CPU): no change to the file can
        # reach the loaded weights or crash the process. The same resident memory, +24 ms
        # for the default model; what it costs a multi-GB model: docs/PERFORMANCE.md.
        mparams.load_mode = lib.LLAMA_LOAD_MODE_NONE
        mparams.progress_callback = on_progress
        model = lib.llama_model_load_from_file(str(info.path).encode(), mparams)
        if not model:
            if cancelled():
                raise LoadCancelled("Loading the model was cancelled.")
            raise ModelError(
                f"llama.cpp could not load {info.path} ({info.architecture}). The file may "
                "be damaged, or need a newer llama.cpp than this CodeLamp ships."
            )
        n_ctx = info.max_tokens
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = n_ctx
        cparams.n_seq_max = 1
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.embeddings = True
        cparams.pooling_type = POOLING_IDS[info.pooling]
        cparams.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_ENABLED
        ctx = lib.llama_init_from_model(model, cparams)
        if not ctx:
            lib.llama_model_free(model)
            raise ModelError(f"llama.cpp could not create a context for {info.path}.")
        batch = lib.llama_batch_init(n_ctx, 0, 1)
        progress(1.0, "Model ready")
        return cls(lib, info, model, ctx, batch, n_ctx, threads)

    def set_threads(self, threads: int) -> None:
        if threads != self.threads:
            self.lib.llama_set_n_threads(self.ctx, threads, threads)
            self.threads = threads

    def free(self) -> None:
        self.lib.llama_batch_free(self.batch)
        self.lib.llama_free(self.ctx)
        self.lib.llama_model_free(self.model)

    def embed(self, tokens: list[int]) -> np.ndarray:
        n = len(tokens)
        if not 0 < n <= self.n_ctx:  # would abort inside llama.cpp
            raise AssertionError(f"{n} tokens for a context of {self.n_ctx}")
        self._tokens[:n] = tokens
        self.batch.n_tokens = n
        if self.memory:
            self.lib.llama_memory_clear(self.memory, True)
        run = self.lib.llama_encode if self.has_encoder else self.lib.llama_decode
        rc = run(self.ctx, self.batch)
        if rc != 0:
            raise ModelError(f"llama.cpp failed to embed a text of {n} tokens (code {rc}).")
        ptr = self.lib.llama_get_embeddings_seq(self.ctx, 0)
        if not ptr:
            raise ModelError(f"{self.info.path.name} returned no pooled embedding.")
        return np.ctypeslib.as_array(ptr, shape=(self.n_embd,)).copy()
