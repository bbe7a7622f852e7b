"""The embedding cache: persisted, counted, bounded, and self-healing."""

from __future__ import annotations

import numpy as np

from app.core.cache import EmbeddingCache


def vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(8).astype(np.float32)


def test_round_trip_and_counters(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put_many("m1", {"a": vec(1), "b": vec(2)})
    got = cache.get_many("m1", ["a", "b", "c", "a"])
    assert set(got) == {"a", "b"}
    np.testing.assert_array_equal(got["a"], vec(1))
    assert (cache.hits, cache.misses) == (2, 1), "duplicates in one lookup count once"


def test_keys_are_per_model(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put_many("m1", {"a": vec(1)})
    assert cache.get_many("m2", ["a"]) == {}


def test_persists_across_processes(tmp_path):
    EmbeddingCache(tmp_path / "c.sqlite").put_many("m", {"a": vec(3)})
    np.testing.assert_array_equal(
        EmbeddingCache(tmp_path / "c.sqlite").get_many("m", ["a"])["a"], vec(3)
    )


def test_many_keys_in_one_lookup(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put_many("m", {str(i): vec(i) for i in range(1500)})
    assert len(cache.get_many("m", [str(i) for i in range(2000)])) == 1500


def test_prune_drops_least_recently_used(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite", max_bytes=10 * (32 + 100))
    cache.put_many("m", {f"old{i}": vec(i) for i in range(10)})
    cache.put_many("m", {f"new{i}": vec(i) for i in range(10)})
    cache.get_many("m", [f"new{i}" for i in range(10)])  # recently used
    assert cache.prune() > 0
    assert cache.size_bytes() <= cache.max_bytes
    assert len(cache.get_many("m", [f"new{i}" for i in range(10)])) == 10
    assert cache.get_many("m", [f"old{i}" for i in range(10)]) == {}


def test_damaged_cache_file_is_replaced(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = EmbeddingCache(path)
    cache.put_many("m", {"a": vec(1)})
    assert "a" in cache.get_many("m", ["a"])
