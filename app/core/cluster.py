"""Indexing on a Ray cluster: ``codelamp index PATH --cluster ADDRESS`` (docs/SCALING.md).

What runs where:

* This process (the driver) does what it does for a local index (:mod:`app.core.indexer`):
  it discovers the files and diffs them against the index, looks chunks up in the
  embedding cache, and writes the index with the same batched, crash-safe commits.
* The cluster reads and chunks the changed files (a Ray Data pass over the discovery
  output), then embeds the chunks the cache lacks (a second pass) in actors that each hold
  the model, or call the embedding servers. Vectors stream back; a file is committed once
  all its vectors are in, so a stopped or failed run keeps every finished file and the
  next run resumes from there.

Two passes, because the cache is a SQLite file on the driver's machine: the chunks come
back before anything is embedded, and only what the cache lacks goes out again.

Every node of the cluster needs:

* the project at the same absolute path (a shared or synced folder): workers read it;
* the model file at the same path with the same bytes (checked: the model id names its
  SHA-256). With embedding servers (:class:`app.core.remote.RemoteEmbedder`) every node
  must reach them, and reads the API key from its own ``CODELAMP_API_KEY`` or keyring:
  the key is never sent through the cluster;
* CodeLamp's dependencies (``pip install 'codelamp[cluster]'``). CodeLamp's own code is
  shipped with the job, so workers always run the driver's version of it.

Ray is an optional dependency: nothing imports this module unless a cluster is used.
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

import app
from app.core.embedder import Embedder, Tokenizer
from app.core.errors import CodeLampError, ModelError, UsageError
from app.core.files import FileEntry
from app.core.indexer import _FileWork, _Run, _Writer, prepare_file
from app.core.remote import RemoteEmbedder
from app.core.storage import FileRecord

if TYPE_CHECKING:
    from ray.data import Dataset

RAY_MISSING = "--cluster needs Ray, which is not installed: pip install 'codelamp[cluster]'"
CONNECT_TIMEOUT_S = 5.0  # an address nobody answers fails this fast, not after a minute
DEFAULT_PORTS = {"": 6379, "ray://": 10001}  # Ray's own defaults: GCS, Ray Client
# Each actor embeds with one llama.cpp thread on one CPU: one thread has no barrier to
# spin at, and N one-thread actors embed about as fast as one N-thread model.
ACTOR_CPUS = 1
ACTOR_OVERHEAD_BYTES = 256 << 20  # an embedding actor's memory beyond the model file
FILES_PER_CALL = 8  # files a chunking actor reads per call
# HTTP/2's client preface and an empty SETTINGS frame; a server's first frame is SETTINGS.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_HTTP2_SETTINGS = 4
MAX_TEMP_BASE = 20  # characters
_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")  # the user's choice, else set for auto
# Passed to every worker, so it uses the same CodeLamp folders as the driver (tests).
SHARED_ENV = ("CODELAMP_HOME",)


def _ray() -> ModuleType:
    try:
        import ray
        import ray.data
        import ray.exceptions
    except ImportError:
        raise CodeLampError(RAY_MISSING) from None
    return ray


def check_reachable(address: str) -> None:
    """Raise a one-line CodeLampError unless something listens at ``address``: Ray itself
    keeps retrying an unreachable address for a long time."""
    scheme = "ray://" if address.startswith("ray://") else ""
    hostport = address.removeprefix(scheme)
    host, colon, port = hostport.rpartition(":")
    if not colon:
        host, port = hostport, str(DEFAULT_PORTS[scheme])
    if not host or not port.isdigit():
        raise UsageError(
            f"{address!r} is not a Ray address; use auto, HOST:PORT or ray://HOST:PORT"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S) as s:
            # Ray speaks gRPC: an HTTP/2 server answers a client preface with SETTINGS.
            # Anything else there (or a hung head) would keep ray.init waiting for minutes.
            s.settimeout(CONNECT_TIMEOUT_S)
            s.sendall(_HTTP2_PREFACE)
            answer = b""
            while len(answer) < 9 and (data := s.recv(9 - len(answer))):
                answer += data
    except OSError as exc:
        why = exc.strerror or str(exc) or "no answer"
    else:
        if len(answer) == 9 and answer[3] == _HTTP2_SETTINGS:
            return
        why = "something else answers there"
    raise CodeLampError(
        f"Cannot reach the Ray cluster at {address} ({why}). Start it first (`ray start "
        "--head` on its head node), or use --cluster auto to run one on this machine."
    )


def _temp_dir() -> str:
    """A new folder for a local Ray: in TMPDIR when Ray's socket paths under it fit the 107
    bytes Unix allows (they add about 85 to it), else in /tmp."""
    base = tempfile.gettempdir()
    if len(base) > MAX_TEMP_BASE and os.path.isdir("/tmp"):
        base = "/tmp"
    return tempfile.mkdtemp(prefix="codelamp-ray-", dir=base)


@dataclass(frozen=True)
class _Spec:
    """How a worker makes the driver's embedder: plain, picklable values."""

    model_id: str
    batch_size: int
    model_path: str = ""  # a local GGUF file; or:
    remote: dict | None = None  # RemoteEmbedder settings
    probe: tuple[float, ...] | None = None  # the vector the servers must give PROBE_TEXT

    @classmethod
    def of(cls, embedder: Embedder | RemoteEmbedder) -> _Spec:
        if isinstance(embedder, RemoteEmbedder):
            return cls(
                embedder.model_id,
                embedder.batch_size,
                remote=embedder.settings(),
                probe=tuple(float(x) for x in embedder.probe()),
            )
        return cls(embedder.model_id, embedder.batch_size, str(embedder.model_path))

    @property
    def memory(self) -> int:
        """Bytes an embedding actor reserves: Ray places no more actors on a node than
        its memory holds (the weights are read into memory, not mapped)."""
        size = Path(self.model_path).stat().st_size if self.model_path else 0
        return size + ACTOR_OVERHEAD_BYTES

    def embedder(self) -> Embedder | RemoteEmbedder:
        """The embedder, on a worker; a ModelError when this node's model file is
        missing or not the driver's."""
        local = self.model_path or (self.remote or {}).get("local_model")
        host = socket.gethostname()
        if local and not Path(local).is_file():
            raise ModelError(
                f"The model file {local} is not on the Ray node {host}. Every node needs "
                "it at that same path: copy it there, or keep models in a shared folder."
            )
        made: Embedder | RemoteEmbedder
        if self.remote is not None:
            made = RemoteEmbedder(**self.remote)
        else:
            made = Embedder(self.model_path, threads=ACTOR_CPUS)
        if made.model_id != self.model_id:
            raise ModelError(
                f"The model file {local} on the Ray node {host} is not the one this index "
                f"uses ({made.model_id}, not {self.model_id}): copy the driver's file there."
            )
        return made


class _Chunker:
    """A Ray Data actor: reads and chunks files. Only the model's vocabulary is loaded."""

    def __init__(self, root: str, spec: _Spec, limit: int) -> None:
        self.root, self.spec, self.limit = root, spec, limit
        self.count_tokens: Callable[[str], int] | None = None

    def __call__(self, batch: dict) -> dict:
        if self.count_tokens is None:
            if not Path(self.root).is_dir():
                raise CodeLampError(
                    f"The project folder {self.root} is not on the Ray node "
                    f"{socket.gethostname()}. Every node reads the files it chunks: give "
                    "it the project at the same path (a shared or synced folder)."
                )
            made = self.spec.embedder()
            self.count_tokens = (
                Tokenizer(made.info).count_tokens
                if isinstance(made, Embedder)
                else made.count_tokens
            )
        tasks = map(pickle.loads, batch["task"])  # (entry, its record): Cluster.index
        work = [prepare_file(entry, old, self.limit, self.count_tokens) for entry, old in tasks]
        return {"work": np.array([pickle.dumps(w) for w in work], dtype=object)}


class _Embedding:
    """A Ray Data actor: embeds texts with its own copy of the model (or the servers)."""

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        self.model: Embedder | RemoteEmbedder | None = None

    def __call__(self, batch: dict) -> dict:
        if self.model is None:
            self.model = self.spec.embedder()
            self.model.expect(self.spec.probe)  # servers: the index's model, checked first
        return {
            "hash": batch["hash"],
            "vector": self.model.embed_documents([str(t) for t in batch["text"]]),
        }


def _user_error(exc: BaseException) -> CodeLampError | None:
    """The CodeLampError a worker raised, out of Ray's wrappers around it."""
    import ray.exceptions

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, CodeLampError) and not isinstance(err, ray.exceptions.RayError):
            return err
        todo += [getattr(err, "cause", None), err.__cause__, err.__context__]
    return None


class Cluster:
    """A connection to a Ray cluster. ``auto`` starts a local one, stopped on close."""

    def __init__(self, address: str) -> None:
        ray = _ray()
        if address != "auto":
            check_reachable(address)
        runtime_env = {
            "py_modules": [str(Path(app.__file__).parent)],
            "env_vars": {name: os.environ[name] for name in SHARED_ENV if name in os.environ},
        }
        # A Ray of our own keeps its files apart: another ray.init() on this machine then
        # never finds it (Ray's shared /tmp/ray names the latest cluster started).
        self._temp = _temp_dir() if address == "auto" else None
        local = {"include_dashboard": False, "_temp_dir": self._temp} if self._temp else {}
        self._env = {name: os.environ.get(name) for name in _AUTH_ENV}
        if self._temp and not any(self._env.values()):
            # A new local Ray turns on token authentication and, without a token, writes
            # one to ~/.ray/auth_token, which then turns it on for every `ray start --head`
            # of this user. A token of this run only, in the environment, writes nothing.
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
            # ... and says so on stderr, suggesting to turn it off: not for our own token.
            logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
        try:
            ray.init(
                address="local" if address == "auto" else address,
                runtime_env=runtime_env,
                log_to_driver=False,
                logging_level=logging.WARNING,
                **local,
            )
        except (ConnectionError, RuntimeError, OSError, ray.exceptions.RayError) as exc:
            # e.g. a cluster with token authentication and no token here
            self._clean_up()
            raise CodeLampError(f"Cannot use the Ray cluster at {address}: {exc}") from None
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        # "Progress bars disabled": CodeLamp reports progress itself.
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        self.ray, self.address = ray, address

    def close(self) -> None:
        self.ray.shutdown()
        self._clean_up()

    def _clean_up(self) -> None:
        """Undo what starting a local Ray did to this process and the disk."""
        for name, value in self._env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._temp:
            shutil.rmtree(self._temp, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _actors(self, **remote_args: Any) -> dict[str, Any]:
        """Ray Data's arguments for a pass of actors, one per CPU of the cluster."""
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        size = max(1, cpus // ACTOR_CPUS)
        pool = self.ray.data.ActorPoolStrategy(min_size=1, max_size=size, initial_size=size)
        return {"compute": pool, "num_cpus": ACTOR_CPUS, "batch_format": "numpy", **remote_args}

    def index(
        self, run: _Run, changed: list[FileEntry], previous: dict[str, FileRecord], writer: _Writer
    ) -> None:
        """Read, chunk and embed ``changed`` on the cluster; every finished file goes to
        ``writer`` as it comes in."""
        spec = _Spec.of(run.embedder)
        tasks = [{"task": pickle.dumps((e, previous.get(e.rel)))} for e in changed]
        chunked = self.ray.data.from_items(tasks).map_batches(
            _Chunker,
            fn_constructor_args=(str(run.root), spec, run.chunk_limit),
            batch_size=FILES_PER_CALL,
            **self._actors(),
        )
        todo: dict[str, str] = {}  # content key -> text, to embed
        waiting: dict[str, list[_FileWork]] = {}  # content key -> files that need it
        missing: dict[int, int] = {}  # id(file) -> vectors it still lacks
        for batch in self._batches(chunked, run):
            for item in map(pickle.loads, batch["work"]):
                run.look_up(item)
                new = run.uncached(item)
                if not new:
                    run.finish(item, writer)
                    continue
                missing[id(item)] = len(new)
                for h, text in new.items():
                    todo.setdefault(h, text)
                    waiting.setdefault(h, []).append(item)
            run.tick()
        if not todo or run.control.cancelled:
            return
        embedded = self.ray.data.from_items(
            [{"hash": h, "text": text} for h, text in todo.items()]
        ).map_batches(
            _Embedding,
            fn_constructor_args=(spec,),
            batch_size=spec.batch_size,
            **self._actors(memory=spec.memory),
        )
        for batch in self._batches(embedded, run):
            for h, vector in zip(batch["hash"], batch["vector"], strict=True):
                for item in waiting.pop(str(h)):
                    item.new_vectors[str(h)] = vector
                    run.credit(item, 1)
                    run.state.current = item.record.path  # the file vectors come in for
                    missing[id(item)] -= 1
                    if not missing[id(item)]:
                        run.finish(item, writer)
            run.state.chunks_embedded += len(batch["hash"])
            run.tick()

    def _batches(self, dataset: Dataset, run: _Run) -> Iterator[dict]:
        """The dataset's output as it comes in. While the run is paused nothing is taken
        (the cluster stops once its buffers are full); cancelled, the dataset is stopped."""
        batches = iter(dataset.iter_batches(batch_size=None, batch_format="numpy"))
        try:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except Exception as exc:
                    if (problem := _user_error(exc)) is not None:
                        raise problem from None
                    raise
                run.wait_if_paused()
                if run.control.cancelled:
                    return
                yield batch
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
