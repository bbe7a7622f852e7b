"""llama-cpp-python's OpenAI-compatible embedding server, started for tests and benchmarks.

    with llama_server(model, threads=1, cpus="1") as url:  # url: http://127.0.0.1:PORT/v1
        ...

``cpus`` pins the server to those cores (``taskset`` list syntax), so a benchmark can
give each server its own core.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(
    model: Path, threads: int = 1, cpus: str | None = None, log: Path | None = None
) -> Iterator[str]:
    """Serve ``model`` on 127.0.0.1 until the block ends; yields the base URL (…/v1).

    Settings as CodeLamp's own embedder uses them (docs/PERFORMANCE.md): a 256-token
    context, batch and ubatch, flash attention."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--embedding",
        "true",
        "--n_ctx",
        "256",
        "--n_batch",
        "256",
        "--n_ubatch",
        "256",
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--flash_attn",
        "true",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()
