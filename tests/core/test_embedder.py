"""The embedder with real models through llama.cpp: lazy, safe, thread-safe, correct."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from texts import LONG_TEXT

from app.core import default_model as dm
from app.core.embedder import Embedder, LoadCancelled, missing_cpu_features
from app.core.errors import ModelError


def test_model_is_not_loaded_until_first_use(default_model):
    emb = Embedder(default_model)
    assert not emb.loaded
    assert (emb.dim, emb.max_tokens) == (384, 256)  # known from the header alone
    emb.embed_query("x")
    assert emb.loaded
    emb.close()
    assert not emb.loaded


def test_importing_the_core_loads_neither_llama_nor_qt():
    code = (
        "import sys, app.cli, app.core.embedder, app.core.models, app.core.default_model;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('llama_cpp', 'PySide6')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_load_reports_real_progress_to_completion(default_model):
    seen: list[tuple[float, str]] = []
    with Embedder(default_model) as emb:
        emb.load(progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions), "progress never goes backwards"
    assert fractions[-1] == 1.0
    assert any("Reading" in m for _, m in seen) and any("Loading" in m for _, m in seen)
    assert any(0.9 < f < 1.0 for f in fractions), "llama.cpp's own load callback reports too"


@pytest.mark.parametrize("phase", ["reading", "llama.cpp"])
def test_load_can_be_cancelled_in_either_phase(default_model, phase):
    state = {"last": 0.0}
    threshold = 0.0 if phase == "reading" else 0.9

    def cancelled() -> bool:
        return state["last"] > threshold

    emb = Embedder(default_model)
    with pytest.raises(LoadCancelled):
        emb.load(progress=lambda f, m: state.update(last=f), cancelled=cancelled)
    assert not emb.loaded
    emb.load()  # a cancelled load leaves nothing broken behind
    assert emb.embed_query("still works").shape == (384,)
    emb.close()


def test_vectors_are_unit_length_float32(embedder):
    vecs = embedder.embed_documents(["alpha", "def beta(): pass", ""])
    assert vecs.dtype == np.float32 and vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_documents([]).shape == (0, 384)


def test_same_text_same_vector(embedder):
    a = embedder.embed_documents(["retry failed uploads"])[0]
    b = embedder.embed_documents(["something else entirely", "retry failed uploads"])[1]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_meaning_ranks_code(embedder):
    docs = [
        "def load_settings(path):\n    with open(path) as f:\n        return json.load(f)",
        "SELECT name, total FROM invoices WHERE paid = 0 ORDER BY total DESC",
        "for attempt in range(5):\n    try:\n        upload(blob)\n        break\n"
        "    except IOError:\n        time.sleep(2 ** attempt)",
    ]
    vecs = embedder.embed_documents(docs)
    for query, expected in [
        ("read the json configuration file", 0),
        ("unpaid invoices sorted by amount", 1),
        ("retry a failed upload with backoff", 2),
    ]:
        assert int(np.argmax(vecs @ embedder.embed_query(query))) == expected, query


def test_long_text_is_truncated_not_fatal(embedder):
    assert embedder.count_tokens(LONG_TEXT) > 512
    tokens = embedder.tokenize(LONG_TEXT)
    assert len(tokens) == embedder.max_tokens
    assert tokens[0] == 101 and tokens[-1] == 102, "[CLS] … [SEP] survive truncation"
    vec = embedder.embed_documents([LONG_TEXT])[0]
    assert np.isfinite(vec).all()


def test_concurrent_callers_get_the_same_answers(embedder):
    texts = [f"function number {i} handles case {i * 7}" for i in range(24)]
    expected = embedder.embed_documents(texts)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        results[k] = embedder.embed_documents(texts[k::4])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        np.testing.assert_allclose(results[k], expected[k::4], atol=1e-6)


def test_nan_vectors_are_rejected(tmp_path, source_wheel):
    """A model whose weights produce NaN gets a clear error, not NaN in the index."""
    source = dm.read_wheel(source_wheel)
    source.tensors["embeddings.LayerNorm.weight"] = np.full(384, np.nan, dtype=np.float32)
    path = tmp_path / "poisoned.gguf"
    dm.write_gguf(source, path, "f16")
    with Embedder(path) as emb, pytest.raises(ModelError, match="invalid vector"):
        emb.embed_documents(["anything"])


def test_threads_default_to_physical_cores(default_model):
    import psutil

    assert Embedder(default_model).threads == (psutil.cpu_count(logical=False) or 1)
    assert Embedder(default_model, threads=1).threads == 1


# --- a causal, Q4_K_M, last-token-pooling model: nomic-embed-code's code path ----------


@pytest.fixture(scope="module")
def causal(gemma_model):
    with Embedder(gemma_model) as emb:
        yield emb


def test_causal_q4_k_m_model_embeds(causal):
    vecs = causal.embed_documents(["def f(x): return x + 1", "hello world", ""])
    assert vecs.shape == (3, 640)
    assert np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float(vecs[0] @ vecs[1]) < 0.9999, "different texts, different vectors"


def test_causal_model_truncates_past_its_cap(causal):
    text = "word " * 3000
    assert causal.count_tokens(text) > causal.max_tokens
    assert len(causal.tokenize(text)) == causal.max_tokens
    assert np.isfinite(causal.embed_documents([text])).all()


def test_query_prefix_from_preset(gemma_model, tmp_path):
    """Named like nomic-embed-code, the model gets that preset's query prefix."""
    alias = tmp_path / "nomic-embed-code.Q4_K_M.gguf"
    alias.symlink_to(gemma_model)
    with Embedder(alias) as emb:
        assert emb.info.preset.key == "nomic-embed-code"
        query = emb.embed_query("parse config")
        with_prefix = emb.embed_documents([emb.info.preset.query_prefix + "parse config"])[0]
        bare = emb.embed_documents(["parse config"])[0]
    np.testing.assert_allclose(query, with_prefix, atol=1e-5)
    assert not np.allclose(query, bare, atol=1e-3)


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse sse2 avx fma f16c
bugs\t\t: spectre_v1
"""


def test_missing_cpu_features_reads_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    assert missing_cpu_features({"avx", "fma"}, cpuinfo) == []
    assert missing_cpu_features({"avx", "avx2", "f16c", "avx512f"}, cpuinfo) == ["avx2", "avx512f"]
    assert missing_cpu_features({"avx2"}, tmp_path / "absent") == []  # unknown: no claim


def test_packaged_build_refuses_a_cpu_below_its_baseline(default_model, packaged_build):
    """A packaged llama.cpp built for AVX2 would die of SIGILL on an older CPU: instead the
    first load says what the CPU lacks and what to do."""
    (packaged_build / "cpu-features").write_text("avx2 no_such_feature\n")
    with pytest.raises(ModelError, match=r"needs a CPU with NO_SUCH_FEATURE.*run\.sh"):
        Embedder(default_model).load()
    (packaged_build / "cpu-features").write_text("sse2\n")  # this machine has it
    with Embedder(default_model) as emb:
        assert emb.embed_query("x").shape == (384,)


def test_a_query_goes_ahead_of_an_indexing_batch(embedder):
    """A search typed while a project indexes must not queue behind the whole batch."""
    batch_done = threading.Event()
    started = threading.Event()
    texts = [f"def function_{i}(value):\n    return value * {i} + {i}\n" for i in range(300)]

    def index_batch():
        started.set()
        embedder.embed_documents(texts)
        batch_done.set()

    thread = threading.Thread(target=index_batch)
    thread.start()
    assert started.wait(10)
    embedder.embed_query("warm")  # the batch is now under way
    vec = embedder.embed_query("retry a failed upload")
    finished_first = not batch_done.is_set()
    thread.join()
    assert finished_first, "the query waited for all 300 documents"
    assert vec.shape == (384,) and abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4


def test_documents_leave_busy_cores_to_other_processes(default_model):
    """Beside two CPU-bound processes on this machine's cores, indexing runs one thread
    (no spinning barriers), while a query still gets every core."""
    from app.core.cpu import FairShare, usable_cores

    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(usable_cores())
    ]
    try:
        share = FairShare(limit=usable_cores(), sample_s=0.5)
        share.threads()  # the first sample
        time.sleep(1.0)
        assert share.threads() == 1
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
