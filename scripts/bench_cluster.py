#!/usr/bin/env python3
"""Indexing on a Ray cluster against indexing in one process (docs/SCALING.md).

Standard-library packages are indexed from scratch (an empty embedding cache each time):
once in this process (the local pipeline, every core) and once with ``--cluster`` on a
local Ray cluster: a head that runs nothing (0 CPUs) and WORKERS nodes of one CPU each.
Prints the chunks/s of each and their ratio.

On one machine the workers, Ray's own processes and this driver share the same cores, so
the ratio measures Ray's overhead, not what more machines would add.

    .venv/bin/python scripts/bench_cluster.py [--packages email json http] [--workers 2]
                                              [--model FILE]

:class:`LocalCluster` starts and stops such clusters for tests/core/test_cluster.py too:
each node is a `ray start` in a process group of its own, killed by its id; never
`ray stop`, which stops every Ray on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_index import copy_packages
from llama_server import free_port

RAY = Path(sys.executable).parent / "ray"


class LocalCluster:
    """Ray nodes on this machine, each a process group of its own. ``temp`` must be a
    short path: Ray's socket paths under it must fit the 107 bytes Unix allows."""

    def __init__(self, temp: Path) -> None:
        self.temp, self.port = temp, free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.groups: list[int] = []

    def start_head(self, cpus: int = 1) -> None:
        self._start(
            cpus,
            "--head",
            "--port",
            str(self.port),
            "--include-dashboard=false",
            "--dashboard-port",
            str(free_port()),
        )

    def add_worker(self, cpus: int = 1) -> int:
        """Start a worker node; returns the id of its process group."""
        return self._start(cpus, "--address", self.address)

    def _start(self, cpus: int, *args: str) -> int:
        # Ports of our own: Ray's fixed defaults would clash with another Ray on the machine.
        ports = [
            f"--{name}={free_port()}"
            for name in (
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "runtime-env-agent-port",
                "metrics-export-port",
            )
        ]
        log = self.temp / f"start-{len(self.groups)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [
                    str(RAY),
                    "start",
                    *args,
                    "--num-cpus",
                    str(cpus),
                    "--temp-dir",
                    str(self.temp),
                    "--disable-usage-stats",
                    *ports,
                ],
                start_new_session=True,
                stdout=out,
                stderr=out,
            )
        self.groups.append(proc.pid)  # `ray start` leads the group its daemons stay in
        if proc.wait(timeout=120) != 0:
            raise RuntimeError(f"ray start failed:\n{log.read_text()[-2000:]}")
        return proc.pid

    def kill(self, group: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)

    def stop(self) -> None:
        for group in reversed(self.groups):
            self.kill(group)


def timed_index(corpus: Path, embedder, home: Path, cluster=None) -> tuple[int, float]:
    """(chunks embedded, seconds) of a first index with an empty cache, in ``home``."""
    from app.core.cache import EmbeddingCache
    from app.core.indexer import index_project

    home.mkdir()
    os.environ["CODELAMP_HOME"] = str(home)
    started = time.perf_counter()
    result = index_project(
        corpus, embedder, cache=EmbeddingCache(home / "cache.sqlite"), cluster=cluster
    )
    return result.chunks_embedded, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--packages", nargs="+", default=["email", "json", "http"])
    parser.add_argument("--workers", type=int, default=2, help="worker nodes, 1 CPU each")
    parser.add_argument("--model", help="GGUF file (default: the default model)")
    args = parser.parse_args()
    # Everything in one short folder (Ray's socket paths go under it), removed at the end.
    work = Path(tempfile.mkdtemp(prefix="bc-", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    os.environ.setdefault("CODELAMP_HOME", str(work / "home"))
    from app.core.cluster import Cluster
    from app.core.default_model import install_default_model
    from app.core.embedder import Embedder

    embedder = Embedder(args.model or install_default_model().path)
    corpus = copy_packages(work / "stdlib", args.packages)
    print(
        f"{len(list(corpus.rglob('*.py')))} files of {', '.join(args.packages)}; "
        f"{os.cpu_count()} cores on this machine"
    )
    n, seconds = timed_index(corpus, embedder, work / "local")
    local = n / seconds
    print(f"one process:            {n} chunks in {seconds:6.1f} s = {local:5.1f} chunks/s")

    (work / "ray").mkdir()
    nodes = LocalCluster(work / "ray")
    try:
        started = time.perf_counter()
        nodes.start_head(cpus=0)
        for _ in range(args.workers):
            nodes.add_worker()
        print(f"cluster started in {time.perf_counter() - started:.1f} s")
        with Cluster(nodes.address) as cluster:
            n, seconds = timed_index(corpus, embedder, work / "cluster", cluster)
    finally:
        nodes.stop()
    remote = n / seconds
    print(
        f"cluster, {args.workers} x 1 CPU:     {n} chunks in {seconds:6.1f} s = "
        f"{remote:5.1f} chunks/s (connecting and actor start-up included)"
    )
    print(f"ratio cluster / one process: {remote / local:.2f}")


if __name__ == "__main__":
    main()
