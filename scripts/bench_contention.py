#!/usr/bin/env python3
"""Indexing on a busy CPU: does CodeLamp slow down to its fair share, or collapse?

Each run is a real ``codelamp index`` process on a copy of standard-library packages, with
an empty home (so nothing comes from the embedding cache), stopped after ``--seconds``
(Ctrl+C, which commits what is done) and measured by the chunks it embedded per second.

1. alone: the unloaded rate R;
2. beside N CPU-bound busy processes (default 2): fair share R / (N + 1), the indexer
   being one of N + 1 processes that want the CPU;
3. three indexers of three different projects at once: fair share R / 3 each.

The target is >= 0.8 of the fair share in both loaded cases. Timed figures drift from run
to run; the ratios are what to compare.

    .venv/bin/python scripts/bench_contention.py [--seconds 40] [--busy 2] [--indexers 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_index import copy_packages

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["email", "json", "http", "logging", "urllib", "importlib", "asyncio"]


def default_model() -> Path:
    sys.path.insert(0, str(REPO))
    from app.core.default_model import install_default_model

    return install_default_model().path


def start_index(corpus: Path, model: Path, home: Path) -> subprocess.Popen:
    env = dict(os.environ, CODELAMP_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "app", "index", str(corpus), "--model", str(model), "--json"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def rates(procs: list[subprocess.Popen], seconds: float) -> list[float]:
    """Stop every indexer after ``seconds`` (if still running); chunks/s of each."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=300)
        summary = json.loads(stdout)
        out.append(summary["chunks_embedded"] / max(summary["seconds"], 1e-6))
    return out


def busy_processes(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--indexers", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-contention-"))
    try:
        model = default_model()
        corpora = [
            copy_packages(work / f"project{i}", PACKAGES) for i in range(max(args.indexers, 1))
        ]
        fresh = iter(range(1000))

        def home() -> Path:
            return work / f"home{next(fresh)}"

        (alone,) = rates([start_index(corpora[0], model, home())], args.seconds)
        print(f"alone: {alone:.1f} chunks/s ({cores} cores)", flush=True)

        hogs = busy_processes(args.busy)
        try:
            time.sleep(1.0)
            (loaded,) = rates([start_index(corpora[0], model, home())], args.seconds)
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        share = alone / (args.busy + 1)
        print(
            f"beside {args.busy} busy processes: {loaded:.1f} chunks/s; fair share "
            f"{share:.1f}; ratio {loaded / share:.2f}",
            flush=True,
        )

        many = rates(
            [start_index(c, model, home()) for c in corpora[: args.indexers]], args.seconds
        )
        share = alone / args.indexers
        listed = ", ".join(f"{r:.1f}" for r in many)
        print(
            f"{args.indexers} indexers at once: {listed} chunks/s; fair share {share:.1f}; "
            f"ratio min {min(many) / share:.2f}, mean "
            f"{sum(many) / len(many) / share:.2f}",
            flush=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
