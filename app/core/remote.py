"""Embedding on servers: any OpenAI-compatible ``POST /v1/embeddings`` endpoint.

llama.cpp's server, llama-cpp-python's server, vLLM, text-embeddings-inference, Ollama and
LM Studio all speak it. :class:`RemoteEmbedder` has the same interface as the local
:class:`app.core.embedder.Embedder`, so the indexer, the watcher and search do not know
which one they drive.

* Texts go in batches sized by tokens (``batch_tokens``, at most ``max_inputs`` texts),
  ``concurrency`` requests in flight per endpoint. Every endpoint's senders take batches
  from one queue, so a fast server takes more of them and a slow one fewer.
* 429, 5xx, timeouts and dropped connections are retried with backoff (``Retry-After``
  when the server gives one). An endpoint that fails three times in a row is left alone
  for a while (a circuit breaker: 5 s, doubling to 60 s), and its batches go to the others.
  401/403, a bad request, wrong dimensions, NaN and a wrong number of vectors are not
  retried: they are one clear error.
* Which model a server runs is checked by its vector of a fixed text (the probe, see
  :data:`app.core.embedder.PROBE_TEXT`): every endpoint before it embeds anything, and
  again before each batch is written (:meth:`RemoteEmbedder.verify`). A server that
  swapped models behind the same URL is caught, and its vectors never reach the index.
* Given the GGUF file the server runs (``local_model``), token counts, the chunk limit,
  the prefixes and the model id come from that file (only its vocabulary is loaded), so
  an index built on a server is the very index a local run builds. Without it, the model
  is known by name: prefixes from the name's preset, tokens estimated from bytes.

The API key comes from ``CODELAMP_API_KEY``, else from the system keyring (service
``codelamp``, the endpoint's URL as the user name); it is never written to settings.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from app.core.embedder import (
    PROBE_MIN_COSINE,
    PROBE_TEXT,
    Embedder,
    LoadCancelled,
    LoadProgress,
    Tokenizer,
    probe_cosine,
)
from app.core.errors import ModelError, UsageError
from app.core.models import Preset, preset_for

log = logging.getLogger(__name__)

API_KEY_ENV = "CODELAMP_API_KEY"
KEYRING_SERVICE = "codelamp"
DEFAULT_CONCURRENCY = 2
DEFAULT_BATCH_TOKENS = 8192
DEFAULT_MAX_INPUTS = 64
DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 6  # per batch, over all endpoints
BREAK_AFTER = 3  # consecutive failures that open an endpoint's circuit
BREAK_S, BREAK_MAX_S = 5.0, 60.0
BACKOFF_S, BACKOFF_MAX_S = 0.5, 10.0
# Without the model's vocabulary a token is guessed at 3 bytes: code in a BPE vocabulary
# runs 3.5-4.5 bytes a token, in WordPiece 2.5-3.5; overestimating only makes chunks smaller.
BYTES_PER_TOKEN = 3
UNKNOWN_MAX_TOKENS = 512


class _Retryable(Exception):
    """A failure worth another try. ``busy``: the server answered that it is overloaded
    (429, 5xx), as opposed to not answering at all."""

    def __init__(self, message: str, retry_after: float | None = None, busy: bool = False) -> None:
        super().__init__(message)
        self.retry_after, self.busy = retry_after, busy


def _patiently(call: Callable[[], np.ndarray]) -> np.ndarray:
    """``call()``, retried with backoff while the server says it is busy. A server that
    does not answer at all fails at once: there may be another one to try."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return call()
        except _Retryable as exc:
            if not exc.busy or attempt == MAX_ATTEMPTS:
                raise
            time.sleep(
                max(exc.retry_after or 0.0, min(BACKOFF_S * 2 ** (attempt - 1), BACKOFF_MAX_S))
            )
    raise AssertionError("unreachable")


def endpoint_url(url: str) -> str:
    """The base URL of an OpenAI-compatible API (ending in /v1 or the path given), from
    what a user may type: ``host:port``, ``http://host:port``, ``.../v1`` or the full
    ``.../v1/embeddings``."""
    text = url.strip()
    parts = urlsplit(text if "://" in text else "http://" + text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not an embedding server URL; use e.g. http://gpu-box:8080/v1")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise UsageError(f"{url!r}: {exc}") from None
    path = parts.path.rstrip("/").removesuffix("/embeddings") or "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def api_key(url: str) -> str | None:
    """The key for ``url``: $CODELAMP_API_KEY, else the system keyring, else None."""
    if key := os.environ.get(API_KEY_ENV, "").strip():
        return key
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, url) or None
    except Exception:
        log.debug("no keyring available", exc_info=True)
        return None


def save_api_key(url: str, key: str) -> None:
    """Store ``key`` for ``url`` in the system keyring ("" deletes it)."""
    try:
        import keyring

        if key:
            keyring.set_password(KEYRING_SERVICE, url, key)
        else:
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                keyring.delete_password(KEYRING_SERVICE, url)
    except Exception as exc:
        raise ModelError(
            f"Could not store the API key in the system keyring ({exc}). Set {API_KEY_ENV} instead."
        ) from exc


class _Endpoint:
    """One server: its connections (one per sending thread), health and circuit."""

    def __init__(self, url: str, key: str | None, timeout: float) -> None:
        self.url, self.key, self.timeout = url, key, timeout
        parts = urlsplit(url)
        if parts.hostname is None:  # endpoint_url() gives none such
            raise UsageError(f"{url!r} names no host.")
        self.https, self.host, self.port = parts.scheme == "https", parts.hostname, parts.port
        self.path = parts.path
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.failures = 0  # in a row
        self.open_until = 0.0  # the circuit is open (no requests) until then
        self.verified = False  # its probe matched the reference
        self.in_flight = 0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0

    def failed(self, why: str) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= BREAK_AFTER:
                pause = min(BREAK_S * 2 ** (self.failures - BREAK_AFTER), BREAK_MAX_S)
                self.open_until = time.monotonic() + pause
                log.warning(
                    "embedding server %s failed %d times in a row (%s); "
                    "leaving it alone for %.0f s",
                    self.url,
                    self.failures,
                    why,
                    pause,
                )

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
                with self._lock:
                    self._connections.remove(conn)
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = kind(self.host, self.port, timeout=CONNECT_TIMEOUT_S)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection (after the senders have stopped)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One request; the JSON answer. Raises _Retryable or ModelError."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        with self._lock:
            self.in_flight += 1
        try:
            for attempt in (0, 1):  # a kept-alive connection the server closed: once more
                conn = self._connection(fresh=attempt == 1)
                try:
                    if conn.sock is None:
                        conn.connect()  # within CONNECT_TIMEOUT_S; then wait for answers:
                    conn.sock.settimeout(self.timeout)
                    conn.request(method, self.path + path, body=data, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    break
                except (
                    http.client.RemoteDisconnected,
                    ConnectionResetError,
                    BrokenPipeError,
                ) as exc:
                    conn.close()
                    if attempt == 1:
                        raise _Retryable(f"the connection dropped ({exc})") from exc
                except TimeoutError as exc:
                    conn.close()
                    raise _Retryable(f"no answer within {self.timeout:.0f} s") from exc
                except OSError as exc:
                    conn.close()
                    raise _Retryable(f"cannot reach it ({exc.strerror or exc})") from exc
        finally:
            with self._lock:
                self.in_flight -= 1
        return self._answer(response, payload)

    def _answer(self, response: http.client.HTTPResponse, payload: bytes) -> dict:
        status = response.status
        detail = _error_detail(payload)
        if status in (401, 403):
            raise ModelError(
                f"The embedding server at {self.url} refused the request ({status}"
                f"{': ' + detail if detail else ''}). Set its API key in {API_KEY_ENV} or "
                f"in the system keyring (service {KEYRING_SERVICE!r}, user {self.url!r})."
            )
        if status == 429 or status >= 500:
            retry_after = response.getheader("Retry-After")
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            raise _Retryable(f"HTTP {status}{': ' + detail if detail else ''}", wait, busy=True)
        if status != 200:
            raise ModelError(
                f"The embedding server at {self.url} answered HTTP {status}"
                f"{': ' + detail if detail else ''}."
            )
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            raise ModelError(
                f"The embedding server at {self.url} did not answer JSON ({payload[:80]!r})."
            ) from exc
        if not isinstance(answer, dict):
            raise ModelError(f"The embedding server at {self.url} gave an unexpected answer.")
        return answer

    def embed(self, texts: list[str], model: str | None, dims: int | None) -> np.ndarray:
        body: dict = {"input": texts, "encoding_format": "float"}
        if model:
            body["model"] = model
        answer = self.request("POST", "/embeddings", body)
        return _vectors(self.url, answer, len(texts), dims)

    def model_names(self) -> list[str]:
        try:
            answer = self.request("GET", "/models")
        except (_Retryable, ModelError):
            return []
        data = answer.get("data")
        return (
            [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]
            if (isinstance(data, list))
            else []
        )


def _error_detail(payload: bytes) -> str:
    """The server's own words for an error, short."""
    try:
        answer = json.loads(payload)
        error = answer.get("error", answer) if isinstance(answer, dict) else answer
        text = error.get("message", error) if isinstance(error, dict) else error
    except ValueError:
        text = payload.decode("utf-8", errors="replace")
    return " ".join(str(text).split())[:160]


def _vectors(url: str, answer: dict, expected: int, dims: int | None) -> np.ndarray:
    """The vectors of an embeddings answer, in input order, checked and normalised."""
    data = answer.get("data")
    if not isinstance(data, list):
        raise ModelError(f"The embedding server at {url} gave no 'data' in its answer.")
    if len(data) != expected:
        raise ModelError(
            f"The embedding server at {url} returned {len(data)} vectors for {expected} texts."
        )
    try:
        data = sorted(data, key=lambda d: int(d.get("index", 0)))
        matrix = np.array([d["embedding"] for d in data], dtype=np.float32)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(
            f"The embedding server at {url} returned vectors CodeLamp cannot "
            f"read ({exc}); is it an embedding model?"
        ) from exc
    if matrix.ndim != 2:
        raise ModelError(
            f"The embedding server at {url} returned one vector per token, not "
            "per text: it needs pooling turned on (an embedding model, e.g. "
            "llama.cpp's --pooling mean)."
        )
    if dims is not None and matrix.shape[1] != dims:
        raise ModelError(
            f"The embedding server at {url} returned {matrix.shape[1]}-dimension "
            f"vectors, not {dims}: it runs another model."
        )
    norms = np.linalg.norm(matrix, axis=1)
    if not np.isfinite(matrix).all() or not (norms > 0).all():
        raise ModelError(
            f"The embedding server at {url} returned invalid vectors (NaN, inf "
            "or zero); nothing was written."
        )
    return matrix / norms[:, None]


@dataclass(order=True)
class _Job:
    not_before: float
    seq: int
    texts: list[str] = field(compare=False)
    future: Future = field(compare=False, default_factory=Future)
    attempts: int = field(compare=False, default=0)


class RemoteEmbedder:
    """Embeds on one or more OpenAI-compatible servers. Thread-safe; connects on first use
    (anything about the model, its id included, needs the servers)."""

    def __init__(
        self,
        urls: Sequence[str],
        model: str | None = None,
        local_model: str | Path | None = None,
        find_local: Callable[[str], Path | None] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        max_inputs: int = DEFAULT_MAX_INPUTS,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """``local_model``: the GGUF file the servers run (checked by its probe). Without
        it, ``find_local(model name)`` may offer a local file of that name, used only if its
        probe matches the server's."""
        bases = list(dict.fromkeys(endpoint_url(u) for u in urls))
        if not bases:
            raise UsageError("Give at least one embedding server URL.")
        if concurrency < 1 or batch_tokens < 1 or max_inputs < 1:
            raise UsageError("Concurrency, batch tokens and batch size must be at least 1.")
        self.endpoints = [_Endpoint(u, api_key(u), timeout) for u in bases]
        self.model = model
        self.concurrency, self.batch_tokens, self.max_inputs = (
            concurrency,
            batch_tokens,
            max_inputs,
        )
        self._explicit = Embedder(local_model) if local_model else None
        self._find_local = find_local
        self._local: Embedder | None = None  # the GGUF the servers run, once confirmed
        self._tokenizer: Tokenizer | None = None
        self._identified = False
        self._lock = threading.RLock()
        self._jobs: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._senders: list[threading.Thread] = []
        self._closed = threading.Event()
        self._reference: np.ndarray | None = None  # the probe every endpoint must match
        self._dims: int | None = None
        self._fatal: ModelError | None = None  # an endpoint ran another model

    def settings(self) -> dict:
        """What makes this embedder again elsewhere (``RemoteEmbedder(**settings)``): plain
        values, no API key (each process reads its own, see :func:`api_key`). Connects
        first: the local GGUF the servers run is known once they answered."""
        self.load()
        return {
            "urls": [e.url for e in self.endpoints],
            "model": self.model,
            "local_model": str(self._local.model_path) if self._local else None,
            "concurrency": self.concurrency,
            "batch_tokens": self.batch_tokens,
            "max_inputs": self.max_inputs,
            "timeout": self.endpoints[0].timeout,
        }

    # --- what callers know ---------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        """Texts the indexer hands over at once: enough for two rounds of full requests on
        every sender, so no server waits while the next files are chunked."""
        return 2 * len(self.endpoints) * self.concurrency * self.max_inputs

    @property
    def label(self) -> str:
        urls = [e.url for e in self.endpoints]
        return (
            f"the embedding server at {urls[0]}"
            if len(urls) == 1
            else (f"the embedding servers at {', '.join(urls)}")
        )

    @property
    def name(self) -> str:
        self._identify()
        return self._local.name if self._local else (self.model or "unnamed model")

    @property
    def preset(self) -> Preset:
        self._identify()
        return self._local.preset if self._local else preset_for(self.model or "")

    @property
    def model_id(self) -> str:
        """The local model's id when the servers run a known GGUF: their index is then the
        very one a local run builds. Otherwise ``remote:<model name>``."""
        self._identify()
        return self._local.model_id if self._local else f"remote:{self.name}"

    @property
    def model_path(self) -> Path | str:
        self._identify()
        return self._local.model_path if self._local else ""

    resident_bytes = 0  # the model lives on the servers; only its vocabulary is here

    @property
    def dim(self) -> int:
        self._identify()
        assert self._dims is not None, "_identify() sets it"
        return self._dims

    @property
    def max_tokens(self) -> int:
        self._identify()
        if self._local:
            return self._local.max_tokens
        return self.preset.max_tokens or UNKNOWN_MAX_TOKENS

    @property
    def loaded(self) -> bool:
        return bool(self._senders)

    def count_tokens(self, text: str) -> int:
        self._identify()
        if self._tokenizer:
            return self._tokenizer.count_tokens(text)
        return 2 + -(-len(text.encode("utf-8", errors="replace")) // BYTES_PER_TOKEN)

    # --- connecting ----------------------------------------------------------------------

    def _identify(self, progress: LoadProgress | None = None) -> None:
        """Which model the servers run: its name, its local GGUF if there is one, its
        probe vector and dimensions. Asks the first server that answers."""
        with self._lock:
            if self._identified:
                return
            progress = progress or (lambda f, m: None)
            if self.model is None:
                names = next((n for e in self.endpoints if (n := e.model_names())), [])
                if names:
                    self.model = Path(names[0]).name.removesuffix(".gguf")
            candidate = self._explicit
            if candidate is None and self._find_local and self.model:
                path = self._find_local(self.model)
                candidate = Embedder(path) if path else None
            if candidate is not None:
                progress(0.0, f"Loading {candidate.label} to check the server…")
                local_probe = candidate.probe()
                candidate.close()  # only its probe was needed
                if candidate is self._explicit:
                    self._reference = local_probe  # the server must run this file
                else:  # a guess by name: kept only if the server agrees
                    server_probe = self._first_probe(candidate.preset.document_prefix)
                    if probe_cosine(server_probe, local_probe) < PROBE_MIN_COSINE:
                        log.info("%s is not the model %s runs", candidate.label, self.label)
                        candidate = None
                    else:
                        self._reference = local_probe
            if candidate is not None:
                self._local, self._tokenizer = candidate, Tokenizer(candidate.info)
                self._dims = candidate.dim
            else:
                self._reference = self._first_probe(preset_for(self.model or "").document_prefix)
                self._dims = len(self._reference)
            self._identified = True

    def _first_probe(self, prefix: str) -> np.ndarray:
        problems = []
        for endpoint in self.endpoints:
            try:
                return self._probe_on(endpoint, prefix)
            except _Retryable as exc:
                endpoint.failed(str(exc))
                problems.append(f"{endpoint.url}: {exc}")
        raise ModelError(f"Cannot use {self.label} ({'; '.join(problems)}).")

    def _probe_on(self, endpoint: _Endpoint, prefix: str) -> np.ndarray:
        """``endpoint``'s vector of the probe text (after ``prefix``), asked patiently."""
        text = prefix + PROBE_TEXT
        return _patiently(lambda: endpoint.embed([text], self.model, None)[0])

    def expect(self, probe: Sequence[float] | None) -> None:
        """The index being written or searched records ``probe`` for this model: every
        endpoint must match it (checked now for those already in use)."""
        self._identify()
        if probe is None:
            return
        with self._lock:
            self._reference = np.asarray(probe, dtype=np.float32)
            for endpoint in self.endpoints:
                endpoint.verified = False
        self.load()

    def load(
        self, progress: LoadProgress | None = None, cancelled: Callable[[], bool] | None = None
    ) -> None:
        """Check every endpoint (reachable, and running the expected model), then start
        sending. An endpoint that cannot be reached is routed around while another works;
        one that runs another model is an error."""
        progress = progress or (lambda f, m: None)
        with self._lock:
            if self._fatal:
                raise self._fatal
            if self._senders and all(e.verified or e.is_open() for e in self.endpoints):
                return
            self._identify(progress)
            problems = []
            for i, endpoint in enumerate(self.endpoints):
                if cancelled and cancelled():
                    raise LoadCancelled("Connecting to the embedding server was cancelled.")
                progress(i / len(self.endpoints), f"Checking {endpoint.url}…")
                if endpoint.verified:
                    continue
                try:
                    self._verify(endpoint)
                except _Retryable as exc:
                    endpoint.failed(str(exc))
                    problems.append(f"{endpoint.url}: {exc}")
            if not any(e.verified for e in self.endpoints):
                raise ModelError(f"Cannot use {self.label} ({'; '.join(problems)}).")
            for problem in problems:
                log.warning("routing around %s", problem)
            if not self._senders:
                for endpoint in self.endpoints:
                    for n in range(self.concurrency):
                        thread = threading.Thread(
                            target=self._send,
                            args=(endpoint,),
                            name=f"codelamp-send-{n}",
                            daemon=True,
                        )
                        thread.start()
                        self._senders.append(thread)
            progress(1.0, "Embedding server ready")

    def _verify(self, endpoint: _Endpoint) -> None:
        """Embed the probe on ``endpoint`` and hold it to the reference."""
        vec = self._probe_on(endpoint, self.preset.document_prefix)
        with self._lock:
            cosine = probe_cosine(vec, self.probe())
            if cosine < PROBE_MIN_COSINE:
                self._fatal = ModelError(
                    f"The embedding server at {endpoint.url} runs another model than "
                    f"{self.name if self._explicit else 'this index was built with'} "
                    f"(its vector of a fixed text differs: cosine {cosine:.3f}, not "
                    f">= {PROBE_MIN_COSINE}). Nothing from it was written. Point CodeLamp "
                    "at a server running the same model, or re-index with this one."
                )
                raise self._fatal
            endpoint.verified = True
            endpoint.succeeded()

    def verify(self) -> None:
        """Before a batch is written: every endpoint still runs the model (a server can
        swap models behind the same URL at any time)."""
        for endpoint in self.endpoints:
            if endpoint.verified and not endpoint.is_open():
                try:
                    self._verify(endpoint)
                except _Retryable as exc:
                    endpoint.failed(str(exc))
        if self._fatal:
            raise self._fatal

    def probe(self) -> np.ndarray:
        self._identify()
        assert self._reference is not None, "_identify() sets it; expect() only replaces it"
        return self._reference

    # --- embedding -----------------------------------------------------------------------

    def _fit(self, text: str) -> tuple[str, int]:
        """``text`` cut to the model's limit (the chunker keeps chunks within it; a prefix
        or a query may not be), and its tokens."""
        limit, n = self.max_tokens, self.count_tokens(text)
        while n > limit and len(text) > 1:
            text = text[: int(len(text) * 0.9)]
            n = self.count_tokens(text)
        return text, n

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        self.load()
        prefix = self.preset.document_prefix
        jobs = []
        for batch in self._batches([self._fit(prefix + t) for t in texts]):
            job = _Job(0.0, next(self._seq), batch)
            self._jobs.put(job)
            jobs.append(job)
        try:
            return np.concatenate([job.future.result() for job in jobs])
        finally:
            for job in jobs:
                job.future.cancel()  # the rest, after an error: nobody waits for them

    def _batches(self, texts: list[tuple[str, int]]) -> Iterator[list[str]]:
        """Requests of at most ``batch_tokens`` tokens and ``max_inputs`` texts."""
        batch: list[str] = []
        tokens = 0
        for text, n in texts:
            if batch and (tokens + n > self.batch_tokens or len(batch) >= self.max_inputs):
                yield batch
                batch, tokens = [], 0
            batch.append(text)
            tokens += n
        if batch:
            yield batch

    def embed_query(self, text: str) -> np.ndarray:
        """Straight to the least busy endpoint, ahead of any queued documents."""
        self.load()
        query, _ = self._fit(self.preset.query_prefix + text)
        errors = []
        for _ in range(3):
            ready = [e for e in self.endpoints if e.verified and not e.is_open()] or [
                e for e in self.endpoints if e.verified
            ]
            endpoint = min(ready, key=lambda e: (e.in_flight, e.failures))
            try:
                vec = endpoint.embed([query], self.model, self._dims)[0]
                endpoint.succeeded()
                return vec
            except _Retryable as exc:
                endpoint.failed(str(exc))
                errors.append(f"{endpoint.url}: {exc}")
                time.sleep(BACKOFF_S)
        raise ModelError(f"The embedding server did not answer the query ({errors[-1]}).")

    def _send(self, endpoint: _Endpoint) -> None:
        """A sender thread: take the next due batch, post it, hand back the vectors."""
        while not self._closed.is_set():
            if endpoint.is_open() or not endpoint.verified:
                if not endpoint.verified and not endpoint.is_open():
                    try:  # back from an outage: check it before it embeds anything
                        self._verify(endpoint)
                    except _Retryable as exc:
                        endpoint.failed(str(exc))
                    except ModelError:
                        self._fail_all()
                        return
                self._closed.wait(0.2)
                continue
            try:
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            if job.future.done():
                continue
            wait = job.not_before - time.monotonic()
            if wait > 0:
                self._jobs.put(job)
                self._closed.wait(min(wait, 0.2))
                continue
            try:
                vectors = endpoint.embed(job.texts, self.model, self._dims)
            except _Retryable as exc:
                endpoint.failed(str(exc))
                self._retry(job, f"{endpoint.url}: {exc}", exc.retry_after)
            except ModelError as exc:
                job.future.set_exception(exc)
            except Exception as exc:  # noqa: BLE001 - surfaced in the waiting thread
                job.future.set_exception(exc)
            else:
                endpoint.succeeded()
                job.future.set_result(vectors)

    def _retry(self, job: _Job, why: str, retry_after: float | None) -> None:
        job.attempts += 1
        if job.attempts >= MAX_ATTEMPTS:
            job.future.set_exception(
                ModelError(
                    f"The embedding server failed {job.attempts} times in a row ({why}). "
                    "Everything embedded before is kept; run the same command again later."
                )
            )
            return
        backoff = min(BACKOFF_S * 2 ** (job.attempts - 1), BACKOFF_MAX_S)
        job.not_before = time.monotonic() + max(
            retry_after or 0.0, backoff * random.uniform(0.8, 1.2)
        )
        self._jobs.put(job)

    def _fail_all(self) -> None:
        """An endpoint swapped models: every waiting batch fails with that error."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if not job.future.done():
                job.future.set_exception(self._fatal)

    def close(self) -> None:
        self._closed.set()
        for thread in self._senders:
            thread.join(timeout=1.0)
        self._senders.clear()
        self._closed.clear()
        for endpoint in self.endpoints:
            endpoint.close()
        if self._tokenizer:
            self._tokenizer.close()

    def __enter__(self) -> RemoteEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
