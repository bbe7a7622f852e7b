"""index / search / status / forget, run as real subprocesses, including a SIGKILL."""

from __future__ import annotations

import glob
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from backends import has_written_files, lance_folder, lite_file
from sample_project import BIG_FILE, INDEXED, make_one_big_file_project, make_project

from app.core.project import project_dir
from app.core.storage import ProjectStore


def codelamp(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
    )


@pytest.fixture
def project(tmp_path, default_model) -> Path:
    return make_project(tmp_path / "demo")


def index_json(root: Path) -> dict:
    proc = codelamp("index", str(root), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "WARN" not in proc.stderr, "no library log lines on the user's terminal"
    return json.loads(proc.stdout)


def test_index_search_status_forget(project):
    summary = index_json(project)
    assert summary["files_indexed"] == len(INDEXED) and not summary["cancelled"]

    proc = codelamp("search", str(project), "where do we retry failed uploads?", "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert results[0]["path"] == "src/upload.py"
    assert results[0]["symbol"] == "retry_failed_upload"
    assert {"start_line", "end_line", "language", "score", "snippet"} <= set(results[0])

    text = codelamp("search", str(project), "bcrypt", "--mode", "lexical", "-k", "1")
    assert text.returncode == 0 and "src/auth.go" in text.stdout

    status = json.loads(codelamp("status", str(project), "--json").stdout)
    assert status["files"] == len(INDEXED) and status["chunks"] > 0
    assert {s["path"] for s in status["skipped"]} == {".env", "assets/logo.bin", "data.json"}
    assert status["model"].startswith("codelamp-code-v1") and status["dims"] == 384
    assert status["index_bytes"] > 0 and status["last_indexed"]
    assert status["chunk_tokens"] is None  # the model's limit

    assert codelamp("index", str(project), "--chunk-tokens", "96").returncode == 0
    assert json.loads(codelamp("status", str(project), "--json").stdout)["chunk_tokens"] == 96
    text = codelamp("status", str(project))
    assert "largest: 96 tokens" in text.stdout, text.stdout

    assert codelamp("forget", str(project)).returncode == 0
    assert not project_dir(project.resolve()).exists()
    assert (project / "src/upload.py").exists(), "forget never touches the project's files"
    again = codelamp("search", str(project), "x")
    assert again.returncode == 1 and "not indexed" in again.stderr


def test_search_filters_on_the_command_line(project):
    index_json(project)
    proc = codelamp("search", str(project), "password", "--lang", "go", "--json")
    assert {r["language"] for r in json.loads(proc.stdout)["results"]} == {"go"}
    proc = codelamp("search", str(project), "user", "--path", "web/", "--json")
    assert {r["path"] for r in json.loads(proc.stdout)["results"]} == {"web/api.ts"}


def test_text_regex_and_keywords_modes_on_the_command_line(project):
    index_json(project)
    # Text and regex never load the model: a missing one does not matter to them.
    proc = codelamp(
        "search",
        str(project),
        "bcrypt",
        "--mode",
        "text",
        "--json",
        "--model",
        str(project / "no-such-model.gguf"),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["query"], out["mode"], out["total"]) == ("bcrypt", "text", 4)
    assert [(r["path"], r["start_line"], r["end_line"]) for r in out["results"]] == [
        ("src/auth.go", n, n) for n in (3, 5, 7, 12)
    ]
    first = out["results"][0]
    assert (first["snippet"], first["snippet_line"], first["highlights"]) == (
        'import "golang.org/x/crypto/bcrypt"',
        3,
        [[28, 34]],
    )
    assert first["symbol"] == "" and out["results"][1]["symbol"] == "HashPassword"

    cut = codelamp("search", str(project), r"pass\w+", "--mode", "regex", "-k", "2")
    assert cut.returncode == 0, cut.stderr
    assert cut.stdout.splitlines() == [
        "src/auth.go:5: // HashPassword returns the bcrypt hash of a user's password.",
        "src/auth.go:6: func HashPassword(password string) (string, error) {",
    ]
    assert "showing the first 2 of 5 matching lines" in cut.stderr
    bad = codelamp("search", str(project), "pass(", "--mode", "regex")
    assert bad.returncode == 2 and "Not a valid regular expression: missing )" in bad.stderr

    for mode in ("keywords", "lexical", "Keywords"):
        proc = codelamp("search", str(project), "bcrypt", "--mode", mode, "-k", "1", "--json")
        out = json.loads(proc.stdout)
        assert out["mode"] == "lexical" and "total" not in out
        assert out["results"][0]["path"] == "src/auth.go"


def test_queries_from_stdin_one_json_line_each(project):
    index_json(project)
    queries = "hash a password\n\nload settings from a json file\n"
    proc = codelamp("search", str(project), "-", stdin=queries)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [x["query"] for x in lines] == ["hash a password", "load settings from a json file"]
    assert lines[0]["results"][0]["path"] == "src/auth.go"
    # The README's section that names parse_config may come first (docs/MODEL.md).
    assert "src/config.py" in [r["path"] for r in lines[1]["results"][:2]]


def test_related_prints_like_search_and_loads_no_model(project):
    index_json(project)
    proc = codelamp("related", str(project), "src/config.py", "7", "--json")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["definition"] | {"score": None} == {
        "path": "src/config.py",
        "start_line": 5,
        "end_line": 9,
        "symbol": "parse_config",
        "language": "python",
        "score": None,
        "snippet": "def parse_config(path: Path) -> dict:",
        "snippet_line": 5,
        "highlights": [],
    }
    results = found["results"]
    assert len(results) == 10 and set(results[0]) == set(found["definition"])
    assert not any(r["path"] == "src/config.py" and r["start_line"] == 5 for r in results)

    text = codelamp("related", str(project), str(project / "src/config.py"), "7", "-k", "2")
    assert text.returncode == 0, text.stderr
    top = results[0]
    assert text.stdout.splitlines()[:3] == [
        "Related to parse_config (src/config.py:5-9):",
        f" 1. {top['path']}:{top['start_line']}-{top['end_line']}  {top['symbol']}  "
        f"({top['language']}, {top['score']:.3f})",
        f"      {top['snippet']}",
    ]
    assert text.stdout.count("\n") == 5

    # In a process of its own: related code reads stored vectors, and never loads (nor
    # imports) the model's library.
    code = (
        "import sys, app.cli\n"
        "code = app.cli.main(['related', sys.argv[1], 'src/upload.py', '20'])\n"
        "print('LLAMA', 'llama_cpp' in sys.modules, code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(project)], capture_output=True, text=True, timeout=300
    )
    assert "Related to retry_failed_upload (src/upload.py:17-25):" in proc.stdout, proc.stderr
    assert "LLAMA False 0" in proc.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("src/nope.py", "1"),
            2,
            "src/nope.py is not in the index of {root} (indexed files: 7). "
            "Check the path, relative to the project.",
        ),
        (("src/config.py", "40"), 2, "src/config.py has 13 lines; line 40 is past its end."),
        (
            ("src/config.py", "0"),
            2,
            "Lines are numbered from 1; there is no line 0 in src/config.py.",
        ),
        (("src/config.py", "1", "-k", "0"), 2, "The number of results must be at least 1, not 0."),
    ],
)
def test_related_refuses_a_wrong_file_or_line_in_one_line(project, args, code, message):
    index_json(project)
    proc = codelamp("related", str(project), *args)
    assert proc.returncode == code
    root = project.resolve()
    assert proc.stderr == f"codelamp: {message.format(root=root)}\n"


def test_related_in_a_folder_not_indexed_says_so(project):
    proc = codelamp("related", str(project), "src/config.py", "1")
    assert proc.returncode == 1 and "is not indexed yet" in proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ("index", "{missing}"),
        ("search", "{missing}", "q"),
        ("status", "{missing}"),
        ("index", "{file}"),
    ],
)
def test_bad_paths_are_one_line_errors(tmp_path, args):
    (tmp_path / "afile").write_text("x")
    subst = {"{missing}": str(tmp_path / "missing"), "{file}": str(tmp_path / "afile")}
    proc = codelamp(*[subst.get(a, a) for a in args])
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_usage_errors_exit_2(project):
    assert codelamp("search", str(project)).returncode == 2
    psychic = codelamp("search", str(project), "q", "--mode", "psychic")
    assert (
        psychic.returncode == 2
        and "'psychic': use one of hybrid, vector (semantic), lexical (keywords), text, regex"
        in psychic.stderr
    )
    for size in ("5", "-1", "63", "lots"):  # were silently raised to 64 or read as 0
        proc = codelamp("index", str(project), "--chunk-tokens", size)
        assert proc.returncode == 2 and "at least 64" in proc.stderr, proc.stderr


def start_watch(root: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "watch", str(root), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if json.loads(line)["event"] == "watching":
            return proc
    raise AssertionError(f"watch did not start: {proc.stderr.read()}")


def stop_watch(proc: subprocess.Popen) -> float:
    """SIGTERM; returns how long it took to exit."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    return time.monotonic() - started


def test_forget_refuses_while_the_project_is_watched(project):
    """forget used to delete the index under a running watch, whose next save then built
    an index of that one file."""
    index_json(project)
    watch = start_watch(project)
    try:
        proc = codelamp("forget", str(project))
        assert proc.returncode == 1 and "codelamp watch" in proc.stderr
        assert f"pid {watch.pid}" in proc.stderr and "stop it" in proc.stderr
        assert json.loads(codelamp("status", str(project), "--json").stdout)["files"] > 1
    finally:
        stop_watch(watch)
    assert codelamp("forget", str(project)).returncode == 0  # no watcher: allowed


def test_a_killed_watchers_mark_does_not_block_forget(project):
    index_json(project)
    watch = start_watch(project)
    watch.kill()
    watch.communicate()
    assert codelamp("forget", str(project)).returncode == 0


def test_watch_stops_within_seconds_of_sigterm_even_mid_round(project):
    """A big catch-up round is cancelled (keeping what it committed), not waited for."""
    index_json(project)
    watch = start_watch(project)
    for i in range(300):
        (project / "many" / f"m{i}").mkdir(parents=True)
        (project / "many" / f"m{i}" / "mod.py").write_text(
            f"def f_{i}(x):\n    return x + {i}\n" * 20
        )
    time.sleep(2.0)  # the burst becomes one re-scan round, which is now running
    assert stop_watch(watch) < 10  # the round alone takes ~30 s here
    assert json.loads(codelamp("status", str(project), "--json").stdout)["state"] == "ready"


LANCE_FILES = pytest.mark.lancedb_only("LanceDB's files")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param("truncate", marks=LANCE_FILES),
        pytest.param("delete_data", marks=LANCE_FILES),
        pytest.param("delete_versions", marks=LANCE_FILES),
        "garble_sqlite",  # the lite storage's file, whatever the default storage
    ],
)
def test_damaged_index_is_detected_and_rebuilt(project, damage):
    if damage == "garble_sqlite":
        lite = codelamp("index", str(project), "--storage", "lite")
        assert lite.returncode == 0, lite.stderr
        db = lite_file(project.resolve())
        with db.open("r+b") as fh:  # 4 KB of garbage across two pages in the middle
            fh.seek(db.stat().st_size // 2 - 2048)
            fh.write(b"\xa5" * 4096)
    else:
        index_json(project)
        (chunks,) = glob.glob(str(lance_folder(project.resolve()) / "chunks_*.lance"))
        data = sorted(glob.glob(chunks + "/data/*.lance"), key=os.path.getsize)[-1]
        if damage == "truncate":
            os.truncate(data, os.path.getsize(data) // 2)
        elif damage == "delete_data":
            os.remove(data)
        else:
            for f in glob.glob(chunks + "/_versions/*"):
                os.remove(f)
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}

    proc = codelamp("search", str(project), "retry upload")
    assert proc.returncode == 1
    assert "damaged" in proc.stderr and "codelamp forget" in proc.stderr
    assert "codelamp index" in proc.stderr and proc.stderr.count("\n") == 1
    assert before == {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}

    rebuilt = codelamp("index", str(project), "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "damaged" in rebuilt.stderr and "rebuilt" in rebuilt.stderr
    assert json.loads(rebuilt.stdout)["chunks_embedded"] == 0, "the cache survives"
    proc = codelamp("search", str(project), "retry failed uploads", "--json")
    assert json.loads(proc.stdout)["results"][0]["path"] == "src/upload.py"


def chunk_keys(root: Path) -> list[tuple[str, int, int]]:
    rows = ProjectStore.open(root).chunks().scan(["path", "start_line", "end_line"]).to_pylist()
    return sorted((r["path"], r["start_line"], r["end_line"]) for r in rows)


def test_sigkill_mid_index_then_rerun_is_consistent(tmp_path, default_model):
    root = tmp_path / "killme"
    for i in range(120):
        pkg = root / f"pkg{i:03d}"
        pkg.mkdir(parents=True)
        (pkg / "mod.py").write_text(
            "".join(
                f"def handler_{i}_{j}(request):\n    value = request.get('k{j}')\n"
                f"    return value * {j} + {i}\n\n\n"
                for j in range(6)
            )
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "index", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    # The writer commits every 10 s; 720 chunks take ~25 s. Wait for the first commit.
    while time.monotonic() < deadline:
        if committed := has_written_files(root.resolve()):
            break
        time.sleep(0.2)
    time.sleep(0.7)  # and then die somewhere in the middle of the next one
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert committed, "the index never committed anything before the kill"

    summary = index_json(root)
    assert not summary["cancelled"]
    assert summary["files_indexed"] < 120, "work committed before the kill is kept"
    keys = chunk_keys(root)
    assert len(keys) == len(set(keys)), "no duplicate chunks"
    assert {p for p, _, _ in keys} == {f"pkg{i:03d}/mod.py" for i in range(120)}
    # Exactly what a fresh index of the same files gives.
    codelamp("forget", str(root))
    index_json(root)
    assert chunk_keys(root) == keys


def test_an_interrupted_first_index_is_not_finished_and_resumes(project, monkeypatch):
    """Killed during its first index: every command answers in one line, and the next
    index embeds only what is missing."""
    monkeypatch.setenv("CODELAMP_FAULT", "write.files:2:kill")  # after the first batch
    killed = codelamp("index", str(project))
    monkeypatch.delenv("CODELAMP_FAULT")
    assert killed.returncode == -signal.SIGKILL

    for mode in ("hybrid", "lexical"):
        proc = codelamp("search", str(project), "retry upload", "--mode", mode)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert f"codelamp index {project}" in proc.stderr and "not finished" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    status = codelamp("status", str(project))
    assert status.returncode == 0 and "NOT FINISHED" in status.stdout
    info = json.loads(codelamp("status", str(project), "--json").stdout)
    assert info["state"] == "unfinished"

    resumed = index_json(project)
    assert resumed["files_unchanged"] == info["files"]  # committed before the kill
    assert resumed["files_indexed"] == len(INDEXED) - info["files"]
    # Killed after its vectors were cached: nothing is embedded twice.
    assert resumed["chunks_embedded"] == 0 and resumed["chunks_cached"] > 0
    done = json.loads(codelamp("status", str(project), "--json").stdout)
    assert done["state"] == "ready" and done["chunks"] == resumed["chunks_cached"]
    proc = codelamp("search", str(project), "where do we retry failed uploads?", "--json")
    assert json.loads(proc.stdout)["results"][0]["path"] == "src/upload.py"


@pytest.mark.parametrize("storage", ["lancedb", "lite"])
def test_no_command_ends_in_a_traceback(tmp_path, default_model, storage):
    """A bug surfaces as one line that points at the log, never a traceback."""
    bad = tmp_path / "damaged"
    bad.mkdir()
    if storage == "lancedb":
        lance_folder(bad.resolve()).mkdir(parents=True)
        (lance_folder(bad.resolve()) / "meta.lance").write_text("not a table")
    else:
        lite_file(bad.resolve()).parent.mkdir(parents=True)
        lite_file(bad.resolve()).write_text("not a database")
    for args in (["status", str(bad)], ["search", str(bad), "x"], ["index", str(bad)]):
        proc = codelamp(*args)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 1), (args, proc.returncode)


def test_tests_rank_below_the_code_unless_no_demote(project):
    (project / "tests").mkdir()
    (project / "tests" / "test_upload.py").write_text(
        "from src.upload import retry_failed_upload\n\n\n"
        "def test_retry_failed_upload_gives_up_after_five_attempts(client):\n"
        "    client.send.side_effect = ConnectionError\n"
        "    assert retry_failed_upload(client, b'blob', attempts=5) is False\n"
        "    assert client.send.call_count == 5\n"
    )
    assert codelamp("index", str(project)).returncode == 0

    def scores(*flags: str) -> dict[str, float]:
        proc = codelamp("search", str(project), "retry failed upload attempts", "--json", *flags)
        assert proc.returncode == 0, proc.stderr
        return {r["symbol"]: r["score"] for r in json.loads(proc.stdout)["results"]}

    ranked, plain = scores(), scores("--no-demote")
    test = "test_retry_failed_upload_gives_up_after_five_attempts"
    assert ranked["retry_failed_upload"] == plain["retry_failed_upload"]
    assert ranked[test] == pytest.approx(plain[test] / 2)
    assert max(ranked, key=ranked.get) == "retry_failed_upload"


def test_the_app_never_imports_the_training_or_cluster_tools(project):
    """torch, sentence-transformers and Ray are extras for training and clusters only."""
    code = (
        "import sys, app.cli, app.core.indexer, app.core.search, app.core.default_model, "
        "app.gui.main_window; sys.argv = ['codelamp', 'search', sys.argv[1], 'retry'];"
        "\ntry:\n    app.cli.main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'sentence_transformers', 'transformers', 'ray'})\n"
        "print('HEAVY', heavy)"
    )
    assert codelamp("index", str(project)).returncode == 0
    proc = subprocess.run(
        [sys.executable, "-c", code, str(project)], capture_output=True, text=True, timeout=300
    )
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_index_progress_on_a_terminal_counts_bytes_and_names_the_file(tmp_path, default_model):
    """On a terminal `codelamp index` redraws one line: the share of the bytes done, the
    ETA once it has a few seconds of work to go on, and the file being embedded."""
    root = make_one_big_file_project(tmp_path / "p", big_functions=120)
    terminal, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "index", str(root)],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=os.environ | {"COLUMNS": "200"},
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            data = os.read(terminal, 65536)
        except OSError:  # EIO: the command has closed the terminal
            break
        if not data:
            break
        shown += data
    os.close(terminal)
    assert proc.wait(timeout=600) == 0
    proc.stdout.close()
    lines = shown.decode().split("\r\033[K")
    line = re.compile(r"(\w+): (\d+)% · (\d+)/9 files · .* chunks/s( · ETA \d+:\d\d)?( · .+)?")
    seen = [m.groups() for m in map(line.fullmatch, (t.strip() for t in lines)) if m]
    assert seen and seen[-1][:2] == ("done", "100"), lines
    percents = [int(pct) for _, pct, *_ in seen]
    assert percents == sorted(percents)
    in_big = [int(pct) for phase, pct, _, _, current in seen if current == f" · {BIG_FILE}"]
    assert len(set(in_big)) >= 3 and 0 < min(in_big) < max(in_big) < 100, in_big
    assert any(eta for *_, eta, _ in seen), "an ETA once a few seconds of work are done"
