"""A model's id names every byte of its file, so vectors of one file are never filed under
another's id; and it costs one hash per file version, not one per use."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import gguf
import numpy as np
from sample_project import make_project

from app import paths
from app.core import identity
from app.core.cache import EmbeddingCache
from app.core.embedder import Embedder
from app.core.indexer import index_project
from app.core.storage import ProjectStore

MIB = 1 << 20


def altered_copy(src: Path, dst: Path) -> Path:
    """``src`` with two FFN matrices halved in place: 2.4 MB changed in the middle, with
    the same size and the same first and last MiB, and vectors at cosine ~0.95 to the
    original's (close enough to go unnoticed in search results)."""
    shutil.copy(src, dst)
    size = dst.stat().st_size
    reader = gguf.GGUFReader(dst, "r+")
    inside = [
        t
        for t in reader.tensors
        if t.name.endswith("ffn_up.weight")
        and t.data_offset > MIB
        and t.data_offset + t.n_bytes < size - MIB
    ]
    for tensor in inside[:2]:
        tensor.data[:] = tensor.data * 0.5
    reader.data.flush()
    del reader
    return dst


def settled(path: Path) -> Path:
    """Wait until ``path`` has been still long enough for its digest to be remembered."""
    st = path.stat()
    age = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns)
    time.sleep(max(0, identity.SETTLED_NS - age) / 1e9 + 0.05)
    return path


def stored_vectors(root: Path) -> dict[tuple[str, int], np.ndarray]:
    rows = ProjectStore.open(root).chunks().scan(["path", "start_line", "vector"]).to_pylist()
    return {(r["path"], r["start_line"]): np.array(r["vector"]) for r in rows}


def test_a_change_in_the_middle_changes_the_id(default_model, base_model_q8, tmp_path):
    altered = altered_copy(default_model, tmp_path / default_model.name)
    original, changed = default_model.read_bytes(), altered.read_bytes()
    assert len(original) == len(changed) and original != changed
    assert original[:MIB] == changed[:MIB] and original[-MIB:] == changed[-MIB:]
    assert Embedder(altered).model_id != Embedder(default_model).model_id
    assert Embedder(base_model_q8).model_id != Embedder(default_model).model_id
    copy = shutil.copy(default_model, tmp_path / "copy.gguf")
    assert Embedder(copy).model_id == Embedder(default_model).model_id, "same bytes, same id"


def test_vectors_of_an_altered_copy_never_reach_an_index_of_the_original(
    default_model, embedder, tmp_path
):
    """The reported poisoning: the altered copy's vectors went into the shared embedding
    cache, and a later index with the right model reused them."""
    altered = altered_copy(default_model, tmp_path / default_model.name)
    with Embedder(altered) as wrong:
        index_project(make_project(tmp_path / "first"), wrong)
    shared = make_project(tmp_path / "shared")
    index_project(shared, embedder)  # the shared cache now holds the altered copy's vectors
    clean = make_project(tmp_path / "clean")
    index_project(clean, embedder, cache=EmbeddingCache(tmp_path / "empty.sqlite"))
    got, expected = stored_vectors(shared), stored_vectors(clean)
    assert got.keys() == expected.keys()
    for key, vector in expected.items():
        np.testing.assert_allclose(got[key], vector, atol=1e-6, err_msg=str(key))


def test_a_model_overwritten_in_place_gets_a_new_id(default_model, tmp_path):
    """Same path, size and inode, mtime put back as ``cp -p`` does: still a new id."""
    model = shutil.copy(default_model, tmp_path / default_model.name)
    before = Embedder(model).model_id
    st = os.stat(model)
    new_bytes = altered_copy(default_model, tmp_path / "altered.gguf").read_bytes()
    with open(model, "r+b") as fh:
        fh.write(new_bytes)
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(model)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )
    assert Embedder(model).model_id != before


def test_an_unchanged_model_is_hashed_once(default_model, monkeypatch):
    settled(default_model)
    hashed = []
    real_hash = identity.hash_file
    monkeypatch.setattr(identity, "hash_file", lambda *a: hashed.append(a) or real_hash(*a))
    first = Embedder(default_model)
    first.load()  # loading hashes the file while it reads it: the id costs nothing more
    ids = {first.model_id} | {Embedder(default_model).model_id for _ in range(3)}
    with Embedder(default_model) as again:
        again.embed_query("x")
        ids.add(again.model_id)
    assert len(ids) == 1 and len(hashed) == 1


def test_a_damaged_digest_file_only_costs_a_hash(default_model):
    model_id = Embedder(settled(default_model)).model_id
    digests = paths.cache_dir() / "model-digests.json"
    assert digests.is_file()
    digests.write_text("{not json")
    assert Embedder(default_model).model_id == model_id
