"""A model file that is truncated, replaced or rewritten while CodeLamp uses it: a clear
error and a process that lives on, never a bus error and never vectors filed under the
wrong model's id."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sample_project import make_project

from app.core.embedder import Embedder
from app.core.errors import ModelError
from app.core.indexer import index_project

REPO = Path(__file__).resolve().parents[2]
CHANGED = "changed while CodeLamp was using it"

EMBED_TRUNCATE_EMBED = """
import sys
from app.core.embedder import Embedder
from app.core.errors import CodeLampError

emb = Embedder(sys.argv[1])
emb.embed_documents(["def before(): pass"])
print("embedded", flush=True)
sys.stdin.readline()  # the test truncates the model file meanwhile
# Past every check, straight to llama.cpp: the weights are in memory, not mapped from the file.
emb._handles.embed(emb.tokenize("def after(): pass"))
print("weights still in memory", flush=True)
try:
    emb.embed_documents(["def after(): pass"])
except CodeLampError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


def test_a_model_truncated_while_in_use_is_a_clear_error_not_a_bus_error(default_model, tmp_path):
    model = shutil.copy(default_model, tmp_path / default_model.name)
    proc = subprocess.Popen(
        [sys.executable, "-c", EMBED_TRUNCATE_EMBED, str(model)],
        cwd=REPO,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline() == "embedded\n", proc.communicate()
    size = os.path.getsize(model)
    os.truncate(model, size // 2)
    out, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 1, f"exit {proc.returncode} (negative: killed by a signal)\n{err}"
    assert out.endswith("weights still in memory\n")
    assert CHANGED in err and f"now has {size // 2:,} bytes instead of {size:,}" in err


def test_a_replaced_model_is_refused_until_the_original_is_back(
    default_model, base_model_q8, tmp_path
):
    model = shutil.copy(default_model, tmp_path / "model.gguf")
    with Embedder(model) as emb:
        expected = emb.embed_query("retry failed uploads")
        model_id = emb.model_id
        shutil.copy(base_model_q8, model)  # rewritten in place: same path, same inode
        with pytest.raises(ModelError, match=CHANGED):
            emb.embed_query("retry failed uploads")
        with pytest.raises(ModelError, match=CHANGED):
            emb.embed_documents(["def f(): pass"])
        os.replace(shutil.copy(base_model_q8, tmp_path / "new.gguf"), model)  # a new file
        with pytest.raises(ModelError, match=CHANGED):
            emb.embed_query("retry failed uploads")
        shutil.copy(default_model, model)  # the same bytes again: newer, but the same model
        np.testing.assert_allclose(emb.embed_query("retry failed uploads"), expected, atol=1e-6)
        assert emb.model_id == model_id


NEW_FUNCTION = '''
def reconcile_ledger_balances(ledger):
    """Sum the ledger's entries and compare them with the stored balance."""
    return sum(entry.amount for entry in ledger.entries) == ledger.balance
'''


def test_codelamp_watch_survives_a_truncated_model(default_model, embedder, tmp_path):
    """The reported crash: exit 135 (SIGBUS) at the first re-index after the truncation.
    Now each round that needs the model says why it failed; watching goes on, and SIGTERM
    still stops it cleanly."""
    project = make_project(tmp_path / "demo")
    index_project(project, embedder)
    model = shutil.copy(default_model, tmp_path / default_model.name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "watch", str(project), "--model", str(model)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 60
        while not any(text in line for line in lines):
            assert proc.poll() is None, f"exit {proc.returncode}: {lines}"
            assert time.monotonic() < deadline, lines
            time.sleep(0.1)

    wait_for("Watching")
    (project / "src" / "ledger.py").write_text(NEW_FUNCTION)
    wait_for("src/ledger.py")  # re-indexed: the model is loaded and in use
    os.truncate(model, os.path.getsize(model) // 2)
    (project / "src" / "ledger2.py").write_text(NEW_FUNCTION.replace("ledger", "book"))
    wait_for(CHANGED)
    time.sleep(1.0)
    assert proc.poll() is None, lines
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, lines
    reader.join(5)
    proc.stdout.close()
    assert any("Stopped watching" in line for line in lines), lines
