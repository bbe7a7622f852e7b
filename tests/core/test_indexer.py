"""Indexing with the real model and a real store: incremental, cached, cancellable."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from backends import table_names
from sample_project import BIG_FILE, INDEXED, make_one_big_file_project, make_project

from app.core.cache import EmbeddingCache
from app.core.chunking import MIN_CHUNK_TOKENS
from app.core.embedder import Embedder
from app.core.errors import CodeLampError
from app.core.indexer import (
    Eta,
    IndexControl,
    IndexOptions,
    IndexResult,
    effective_chunk_tokens,
    index_project,
)
from app.core.project import project_status
from app.core.search import Searcher
from app.core.storage import NotFinished, ProjectStore


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "demo")


def stored_chunks(root: Path) -> list[tuple[str, int, int]]:
    rows = ProjectStore.open(root).chunks().scan(["path", "start_line", "end_line"]).to_pylist()
    return sorted((r["path"], r["start_line"], r["end_line"]) for r in rows)


def top_path(root: Path, embedder, query: str, **kw) -> str:
    results = Searcher(ProjectStore.open(root), embedder).search(query, **kw)
    return results[0].path if results else ""


def test_first_index_covers_exactly_the_indexable_files(project, embedder):
    result = index_project(project, embedder)
    assert not result.cancelled
    assert result.files_indexed == len(INDEXED)
    assert {p for p, _, _ in stored_chunks(project)} == INDEXED
    skipped = dict(result.skipped)
    assert set(skipped) == {".env", "assets/logo.bin", "data.json"}
    assert "secret" in skipped[".env"] and "large" in skipped["data.json"]
    assert result.chunks_embedded > 0


def test_nothing_changed_means_nothing_read(project, embedder):
    index_project(project, embedder)
    again = index_project(project, embedder)
    assert (again.files_indexed, again.chunks_embedded) == (0, 0)
    assert again.files_unchanged == len(INDEXED)


def test_edit_reembeds_only_the_changed_chunk(project, embedder):
    index_project(project, embedder)
    before = stored_chunks(project)
    path = project / "src/upload.py"
    path.write_text(path.read_text().replace("2 ** attempt", "min(60, 2 ** attempt)"))
    cache = EmbeddingCache()
    result = index_project(project, embedder, cache=cache)
    assert result.files_indexed == 1
    assert result.chunks_embedded == 1, "only the retry function changed"
    assert result.chunks_cached >= 2
    assert stored_chunks(project) == before  # same chunks, same places
    assert cache.hits >= 2 and cache.misses == 1


def test_touch_without_change_embeds_nothing(project, embedder):
    index_project(project, embedder)
    os.utime(project / "src/config.py", ns=(1, 1))
    result = index_project(project, embedder)
    assert (result.files_indexed, result.chunks_embedded) == (1, 0)
    assert index_project(project, embedder).files_indexed == 0  # the new mtime was recorded


def test_rename_and_move_cost_no_embedding(project, embedder):
    index_project(project, embedder)
    (project / "pkg").mkdir()
    shutil.move(project / "src/config.py", project / "pkg/settings_loader.py")
    result = index_project(project, embedder)
    assert result.files_deleted == 1 and result.files_indexed == 1
    assert result.chunks_embedded == 0, "a move only changes the path: the cache has it all"
    paths = {p for p, _, _ in stored_chunks(project)}
    assert "src/config.py" not in paths and "pkg/settings_loader.py" in paths


def test_deleted_file_leaves_the_index(project, embedder):
    index_project(project, embedder)
    (project / "src/auth.go").unlink()
    result = index_project(project, embedder)
    assert result.files_deleted == 1
    assert "src/auth.go" not in {p for p, _, _ in stored_chunks(project)}
    assert top_path(project, embedder, "bcrypt password hash", mode="lexical") != "src/auth.go"


def test_newly_ignored_file_is_removed(project, embedder):
    index_project(project, embedder)
    (project / ".gitignore").write_text("build/\n*.log\nlib/\n")
    index_project(project, embedder)
    assert not any(p.startswith("lib/") for p, _, _ in stored_chunks(project))


def test_cancel_keeps_a_consistent_index_and_resumes(tmp_path, embedder):
    root = tmp_path / "many"
    for i in range(40):
        (root / f"m{i:02d}").mkdir(parents=True)
        (root / f"m{i:02d}" / "mod.py").write_text(
            f"def function_{i}(x):\n    return x * {i}\n\n\ndef other_{i}(y):\n    return y - {i}\n"
        )
    control = IndexControl()

    def stop_early(p):
        if p.files_done >= 5:
            control.cancel()

    result = index_project(root, embedder, control=control, progress=stop_early)
    assert result.cancelled and 5 <= result.files_indexed < 40
    with pytest.raises(NotFinished, match="codelamp index"):
        ProjectStore.open(root)  # what search opens: "not finished", never a KeyError
    status = project_status(root)
    assert status["state"] == "unfinished" and status["files"] >= 5
    store = ProjectStore.open(root, unfinished=True)
    records = store.file_records(store.meta["building"])
    done = {p for p, r in records.items() if r.status == "indexed"}
    assert {p for p, _, _ in stored_chunks_any(store)} == done, "chunks only for committed files"
    final = index_project(root, embedder)
    assert not final.cancelled and final.files_indexed == 40 - len(done)
    assert final.files_unchanged == len(done), "resumed: the committed files are not redone"
    assert final.chunks_embedded == 2 * (40 - len(done))
    assert project_status(root)["state"] == "ready"
    chunks = stored_chunks(root)
    assert len(chunks) == len(set(chunks)) == 80


class _SmallBatches:
    """The real embedder, handed 4 texts at a time (as a server backend is handed many)."""

    batch_size = 4

    def __init__(self, embedder) -> None:
        self._embedder = embedder

    def __getattr__(self, name):
        return getattr(self._embedder, name)


def test_a_cancel_mid_batch_keeps_the_files_embedded_whole(tmp_path, embedder):
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_text("def small(x):\n    return x\n")
    body = "\n".join(f"    total += value_{j} * {j}  # step {j} of the sum" for j in range(12))
    (root / "c.py").write_text(
        "\n\n".join(
            f"def big_{i}(value):\n    total = 0\n{body}\n    return total\n" for i in range(6)
        )
    )
    control = IndexControl()

    def cancel_after_the_first_step(p):
        if p.chunks_embedded >= 4:
            control.cancel()

    wrapped = _SmallBatches(embedder)
    result = index_project(root, wrapped, control=control, progress=cancel_after_the_first_step)
    assert result.cancelled
    store = ProjectStore.open(root, unfinished=True)
    records = store.file_records(store.meta["building"])
    assert records["a.py"].status == "indexed", "embedded whole before the cancel: kept"
    assert "c.py" not in records, "half embedded: not written"
    assert index_project(root, embedder).files_unchanged == 1


def stored_chunks_any(store: ProjectStore):
    rows = store.chunks(store.meta["building"]).scan(["path", "start_line", "end_line"])
    return [(r["path"], r["start_line"], r["end_line"]) for r in rows.to_pylist()]


def test_pause_blocks_until_resume(tmp_path, embedder):
    import threading

    root = tmp_path / "p"
    root.mkdir()
    for i in range(6):
        (root / f"f{i}.py").write_text(f"def f{i}():\n    return {i}\n")
    control = IndexControl()
    control.pause()
    done = threading.Event()
    outcome = {}

    def run():
        outcome["result"] = index_project(root, embedder, control=control)
        done.set()

    t = threading.Thread(target=run)
    t.start()
    assert not done.wait(1.5), "paused indexing must not finish"
    control.resume()
    assert done.wait(60)
    t.join()
    assert outcome["result"].files_indexed == 6


def test_model_switch_builds_a_fresh_table(project, base_model, base_model_q8, other_model):
    with Embedder(base_model) as f16:
        index_project(project, f16)
        old_gen = ProjectStore.open(project).meta["generation"]
        with Embedder(base_model_q8) as q8:
            result = index_project(project, q8)
            assert result.chunks_embedded > 0, "another model's vectors are never reused"
            store = ProjectStore.open(project)
            assert store.model_id == q8.model_id and store.meta["generation"] != old_gen
            assert not any(old_gen in n for n in table_names(store)), "old tables dropped"
            assert top_path(project, q8, "hash a user's password with bcrypt") == "src/auth.go"
        # Another file of the same model (its probe vector agrees) searches the index ...
        assert top_path(project, f16, "hash a user's password with bcrypt") == "src/auth.go"
    # ... another model does not.
    with Embedder(other_model) as other, pytest.raises(CodeLampError, match="re-index"):
        Searcher(ProjectStore.open(project), other)


def test_chunk_limit_is_kept_until_changed(project, embedder):
    index_project(project, embedder)
    default_chunks = stored_chunks(project)
    result = index_project(project, embedder, options=IndexOptions(chunk_tokens=64))
    assert result.files_indexed == len(INDEXED), "a new limit chunks every file anew"
    store = ProjectStore.open(project)
    assert store.chunk_tokens == 64
    texts = store.chunks().scan(["text"]).column("text").to_pylist()
    assert max(embedder.count_tokens(t) for t in texts) <= 64
    assert len(texts) > len(default_chunks)
    assert top_path(project, embedder, "hash a user's password with bcrypt") == "src/auth.go"

    again = index_project(project, embedder)  # no limit given (the watcher, the CLI)
    assert again.files_unchanged == len(INDEXED)
    assert ProjectStore.open(project).chunk_tokens == 64

    back = index_project(project, embedder, options=IndexOptions(chunk_tokens=0))
    assert back.chunks_embedded == 0, "the same pieces as before: vectors from the cache"
    assert ProjectStore.open(project).chunk_tokens is None
    assert stored_chunks(project) == default_chunks


def test_effective_chunk_limit():
    assert effective_chunk_tokens(None, None, 256) is None
    assert effective_chunk_tokens(None, 100, 256) == 100
    assert effective_chunk_tokens(0, 100, 256) is None
    assert effective_chunk_tokens(5, None, 256) == MIN_CHUNK_TOKENS
    assert effective_chunk_tokens(1000, None, 256) is None  # never past the model's limit
    assert effective_chunk_tokens(None, 300, 256) is None  # recorded for a bigger model


def test_causal_model_with_other_dims(project, gemma_model):
    with Embedder(gemma_model) as causal:
        index_project(project, causal)
        store = ProjectStore.open(project)
        assert store.dims == 640
        assert Searcher(store, causal).search("password", k=3)


@pytest.mark.lancedb_only("LanceDB's fragments and versions")
def test_fragments_and_versions_stay_bounded(tmp_path, embedder):
    root = tmp_path / "big"
    root.mkdir()
    for i in range(500):
        (root / f"f{i:03d}.py").write_text(f"VALUE_{i} = {i}\n")
    index_project(root, embedder)
    for i in range(50):
        (root / f"f{i:03d}.py").write_text(f"VALUE_{i} = {i + 1000}\n")
        index_project(root, embedder)
    store = ProjectStore.open(root)
    for name in store.table_names():
        table = store.db.open_table(name)
        assert table.stats()["fragment_stats"]["num_fragments"] < 100, name
        assert len(table.list_versions()) < 100, name
    assert len(stored_chunks(root)) == 500


def test_one_summary_of_a_run_for_the_cli_the_window_and_the_watcher():
    result = IndexResult(Path("/p"), 3, 2, 1, 4, chunks_embedded=10, chunks_cached=5, seconds=1.26)
    assert result.summary() == (
        "3 files read, 2 unchanged, 1 removed, 4 skipped · 10 chunks embedded, 5 from cache · 1.3 s"
    )


def test_missing_or_wrong_root(tmp_path, embedder):
    with pytest.raises(CodeLampError, match="No folder"):
        index_project(tmp_path / "nope", embedder)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CodeLampError, match="not a folder"):
        index_project(tmp_path / "file.txt", embedder)


def test_new_file_rules_reach_files_that_did_not_change(tmp_path, embedder, monkeypatch):
    """An index made before secrets were recognised by their content: the next index
    reads every file once more and drops the secret, without re-embedding the rest."""
    from app.core import files, indexer

    root = make_project(tmp_path / "demo")
    token = "ghp_" + "Zq8xW3vK9mN2pL5rT7yB4cD6fH1jG0aE8sU3"
    (root / "notes.md").write_text(f"# Deploy notes\n\nThe bot uses {token} to push.\n")
    with monkeypatch.context() as old_rules:
        old_rules.setattr(files, "holds_secret", lambda text, rel: False)
        old_rules.setattr(indexer, "FILE_RULES_VERSION", "1")
        index_project(root, embedder)
    assert "notes.md" in {p for p, _, _ in stored_chunks(root)}

    again = index_project(root, embedder)
    assert dict(again.skipped)["notes.md"] == "likely secret"
    assert again.chunks_embedded == 0  # the other files were only read, not re-embedded
    assert "notes.md" not in {p for p, _, _ in stored_chunks(root)}
    found = Searcher(ProjectStore.open(root), None).search(token, mode="lexical")
    assert "notes.md" not in {r.path for r in found}
    third = index_project(root, embedder)
    assert third.files_indexed == 0 and third.files_unchanged > 0  # once, not every time


def test_batches_of_a_run_that_failed_before_its_commit_are_committed_by_the_next(
    project, embedder, monkeypatch
):
    index_project(project, embedder)
    (project / "src" / "upload.py").write_text("def reconcile_ledger_balances():\n    pass\n")
    with monkeypatch.context() as m:

        def fail(*args, **kwargs):
            raise OSError("the disk is full")

        backend = type(ProjectStore.open(project))
        m.setattr(backend, "finish", fail)  # its batches are written, not committed
        with pytest.raises(CodeLampError):
            index_project(project, embedder)
    assert top_path(project, embedder, "reconcile ledger balances") != "src/upload.py"
    result = index_project(project, embedder)  # every file looks done: still commit
    assert result.files_indexed == 0
    assert top_path(project, embedder, "reconcile ledger balances") == "src/upload.py"


def test_eta_waits_for_a_few_seconds_of_work_and_some_bytes():
    eta = Eta(100.0)
    assert eta.update(101.0, 500, 10_000) is None, "too early to say"
    assert eta.update(103.0, 500, 10_000) == pytest.approx(9_500 * 3 / 500)
    assert Eta(0.0).update(5.0, 0, 10_000) is None, "nothing done: no rate yet"


def test_eta_forgets_a_burst_once_it_leaves_the_window():
    """Half the bytes come from the cache in the first second, then 50 bytes/s: the
    average since the start would promise the end far too soon for a long time."""
    eta, total, done = Eta(0.0), 20_000, 10_000
    eta.update(1.0, done, total)
    estimates = {}
    for t in range(2, 121):
        done += 50
        estimates[t] = eta.update(float(t), done, total)
    average_since_start = (total - 10_000 - 39 * 50) / ((10_000 + 39 * 50) / 40)
    assert average_since_start < 30, "what the old average said at 40 s"
    assert estimates[40] == pytest.approx((total - 10_000 - 39 * 50) / 50)
    assert estimates[120] == pytest.approx((total - done) / 50)


def test_eta_stays_steady_over_uneven_steps():
    """Steps alternate fast and slow (small files, then a big file's long chunks): each
    step's own rate says 4x more or less time; the ETA stays near the truth."""
    eta, total, done, t, seen = Eta(0.0), 30_000, 0, 0, []
    while done < total:
        t += 1
        done += 200 if t % 2 else 50
        seen.append((t, eta.update(float(t), done, total)))
    end = t  # the real time left at t is end - t
    for t, estimate in seen:
        if t >= 32 and end - t >= 10:
            assert estimate == pytest.approx(end - t, rel=0.1), t


def test_progress_counts_bytes_and_moves_through_a_big_file(tmp_path, embedder):
    """The bug: progress counted files, so one big file sat at the same percentage for
    minutes. Now it moves chunk by chunk, and names the big file while it does."""
    root = make_one_big_file_project(tmp_path / "p")
    reports = []
    result = index_project(root, embedder, progress=reports.append)
    assert result.files_indexed == 9
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    indexing = [p for p in reports if p.phase == "indexing"]
    assert {p.bytes_total for p in indexing} == {sum(f.stat().st_size for f in root.iterdir())}
    assert {p.files_total for p in indexing} == {9}
    assert indexing[-1].bytes_done == indexing[-1].bytes_total
    # The big file is the fifth: until it is written, at most the four before it are.
    in_big = [p for p in indexing if p.files_done < 5 and p.current == BIG_FILE]
    done = [p.bytes_done for p in in_big]
    assert done == sorted(done) and len(set(done) - {0}) >= 3, done
    assert in_big[-1].fraction - in_big[0].fraction > 0.5, "most of the work is that file"
    assert all(p.fraction < 1 for p in in_big)


def test_time_spent_paused_is_not_counted_as_work(tmp_path, embedder):
    """A pause would read as a rate near zero: an ETA far too long after a resume."""
    import threading

    root = make_one_big_file_project(tmp_path / "p", big_functions=40)
    control, paused_s, reports, once = IndexControl(), 3.0, [], threading.Event()

    def pause_once(p):
        reports.append(p)
        if p.chunks_embedded and not once.is_set():
            once.set()
            control.pause()
            threading.Timer(paused_s, control.resume).start()

    result = index_project(root, embedder, control=control, progress=pause_once)
    last = [p for p in reports if p.phase == "indexing"][-1]
    assert result.seconds > paused_s
    assert last.chunks_per_s > result.chunks_embedded / (result.seconds - paused_s + 0.5)
