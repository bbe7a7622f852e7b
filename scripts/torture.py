#!/usr/bin/env python3
"""Fault injection against real ``codelamp`` processes: is the index still right afterwards?

Scenarios (each runs the real CLI with the real model and a real store: LanceDB, or the
lite storage with CODELAMP_STORAGE=lite):

* kills: SIGKILL at instrumented points (app/core/faults.py) of a first index and of an
  incremental one: walk, chunk, embed, write, compact, prune. The points and the hit at
  which to strike are drawn (seeded) from a dry run's real hit counts;
* full disk: a small tmpfs as the home where the machine allows mounting one, plus an
  injected ENOSPC at the storage interface everywhere;
* read-only home, and the data folder deleted while an index runs;
* a storm: `codelamp watch`, a second writer (`codelamp index`, which waits its turn),
  and searches in a loop while files are created, edited, renamed and deleted.

After every case: the index opens (status answers, no traceback), has no duplicate
chunks, answers known queries, and once `codelamp index` has run again it equals a fresh
index of the same tree (same files, same chunks, same content hashes).

    .venv/bin/python scripts/torture.py            # short: what CI runs (~2 min)
    .venv/bin/python scripts/torture.py --long     # >= 20 kills of each kind, big storm

The test suite (tests/faults/) drives the same scenarios in short mode.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

KILL_POINTS = (
    "walk",
    "chunk",
    "embed",
    "write.chunks",
    "write.files",
    "finish.meta",
    "finish.drop",
    "compact",
    "prune",
)
# Query -> the file it must find first (see corpus()).
KNOWN_QUERIES = {
    "retry a failed upload with exponential backoff": "src/upload.py",
    "hash a user's password with bcrypt": "src/auth.go",
    "evict the least recently used cache entry": "lib/cache.rs",
}
RUN_TIMEOUT_S = 300
QUIET_WATCH_S = 3.0  # a watcher idle this long has caught up with the storm


# --- the project ---------------------------------------------------------------------------


_TOPICS = [
    "invoice",
    "shipment",
    "customer",
    "warehouse",
    "payment",
    "report",
    "session",
    "ticket",
    "sensor",
    "playlist",
    "recipe",
    "booking",
]


def module_text(i: int, variant: int = 0) -> str:
    """A small realistic module with distinct functions (``variant`` edits it)."""
    topic = _TOPICS[i % len(_TOPICS)]
    return (
        f'"""Helpers for {topic} records, part {i}."""\n\n\n'
        f"def load_{topic}_{i}(path):\n"
        f'    """Read a {topic} record {i} from disk (v{variant})."""\n'
        f"    with open(path, encoding='utf-8') as fh:\n"
        f"        return fh.read().split('\\n')[{variant}:]\n\n\n"
        f"def summarize_{topic}_{i}(rows):\n"
        f'    """Count the {topic} rows by their first field."""\n'
        f"    totals = {{}}\n"
        f"    for row in rows:\n"
        f"        key = row.split(',')[0]\n"
        f"        totals[key] = totals.get(key, 0) + {variant + 1}\n"
        f"    return totals\n"
    )


def corpus(dest: Path, modules: int = 30) -> Path:
    """The sample project of the tests plus ``modules`` generated Python modules, spread
    over a few folders (so a kill can land between files, folders and batches)."""
    sys.path.insert(0, str(REPO / "tests"))
    from sample_project import make_project

    make_project(dest)
    for i in range(modules):
        path = dest / "pkg" / f"part{i % 4}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(module_text(i), encoding="utf-8")
    return dest


def mutate(root: Path, seed: int = 1) -> None:
    """An incremental change: some modules edited, some deleted, some added."""
    rng = random.Random(seed)
    mods = sorted(root.glob("pkg/*/mod*.py"))
    for path in rng.sample(mods, min(5, len(mods))):
        i = int(path.stem[3:])
        path.write_text(module_text(i, variant=rng.randint(1, 9)), encoding="utf-8")
    for path in rng.sample(sorted(set(mods) - {p for p in mods if not p.exists()}), 2):
        path.unlink(missing_ok=True)
    for j in range(3):
        i = 1000 + seed * 10 + j
        (root / "pkg" / "new").mkdir(parents=True, exist_ok=True)
        (root / "pkg" / "new" / f"mod{i}.py").write_text(module_text(i), encoding="utf-8")


# --- running codelamp ---------------------------------------------------------------------


def cli(
    home: Path,
    *args: str,
    fault: str | None = None,
    timeout: float = RUN_TIMEOUT_S,
    stdin: str | None = None,
) -> subprocess.CompletedProcess:
    env = dict(os.environ, CODELAMP_HOME=str(home))
    env.pop("CODELAMP_FAULT", None)
    if fault:
        env["CODELAMP_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


@contextlib.contextmanager
def using_home(home: Path) -> Iterator[None]:
    """Point this process's CodeLamp paths at ``home`` for a moment (to read an index)."""
    before = os.environ.get("CODELAMP_HOME")
    os.environ["CODELAMP_HOME"] = str(home)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CODELAMP_HOME", None)
        else:
            os.environ["CODELAMP_HOME"] = before


def no_traceback(proc: subprocess.CompletedProcess, what: str) -> None:
    if "Traceback" in proc.stderr or "Traceback" in proc.stdout:
        raise AssertionError(f"{what} printed a traceback:\n{proc.stderr[-3000:]}")


# --- checking an index ----------------------------------------------------------------------


@dataclass
class Snapshot:
    state: str
    files: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # status, sha, n
    chunks: list[tuple[str, int, int, str]] = field(default_factory=list)

    def duplicates(self) -> int:
        return sum(n - 1 for n in Counter(self.chunks).values() if n > 1)

    def stale(self) -> list[str]:
        """Chunks that belong to no indexed file, or files whose chunk count is off."""
        indexed = {p for p, (status, _, _) in self.files.items() if status == "indexed"}
        counts = Counter(c[0] for c in self.chunks)
        orphans = sorted(set(counts) - indexed)
        off = sorted(p for p in indexed if counts.get(p, 0) != self.files[p][2])
        return orphans + off


def snapshot(root: Path, home: Path) -> Snapshot:
    from app.core.storage import NotIndexed, ProjectStore

    with using_home(home):
        try:
            store = ProjectStore.open(root, unfinished=True)
        except NotIndexed:
            return Snapshot("none")
        gen = store.meta.get("generation") or store.meta.get("building")
        state = "ready" if store.finished else "unfinished"
        records = store.file_records(gen) if gen else {}
        if not records:  # a first build killed before it committed a file (or made tables)
            return Snapshot(state)
        rows = store.chunks(gen).scan(["path", "start_line", "end_line", "content_hash"])
        rows = rows.to_pylist()
    return Snapshot(
        state,
        {p: (r.status, r.sha256, r.chunks) for p, r in records.items()},
        sorted((r["path"], r["start_line"], r["end_line"], r["content_hash"]) for r in rows),
    )


def answers_known_queries(root: Path, home: Path, model: Path) -> None:
    queries = "\n".join(KNOWN_QUERIES) + "\n"
    proc = cli(home, "search", str(root), "-", "--model", str(model), stdin=queries)
    no_traceback(proc, "search")
    if proc.returncode != 0:
        raise AssertionError(f"search failed: {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        answer = json.loads(line)
        top = answer["results"][0]["path"] if answer["results"] else None
        if top != KNOWN_QUERIES[answer["query"]]:
            raise AssertionError(f"{answer['query']!r} found {top}")


def check_after_fault(root: Path, home: Path, model: Path) -> Snapshot:
    """Right after a fault: status answers, no duplicates, and a committed index still
    answers the known queries."""
    status = cli(home, "status", str(root), "--json")
    no_traceback(status, "status")
    snap = snapshot(root, home)
    if snap.duplicates():
        raise AssertionError(f"{snap.duplicates()} duplicate chunks after the fault")
    if snap.state == "ready":
        if status.returncode != 0:
            raise AssertionError(f"status failed on a committed index: {status.stderr}")
        answers_known_queries(root, home, model)
    return snap


def check_recovers(root: Path, home: Path, model: Path, fresh: Snapshot) -> None:
    """`codelamp index` again: then the index equals a fresh one and answers queries."""
    proc = cli(home, "index", str(root), "--model", str(model), "--json")
    no_traceback(proc, "index after the fault")
    if proc.returncode != 0:
        raise AssertionError(f"re-index failed ({proc.returncode}): {proc.stderr[-2000:]}")
    snap = snapshot(root, home)
    if snap.state != "ready" or snap.duplicates() or snap.stale():
        raise AssertionError(
            f"after re-index: {snap.state}, {snap.duplicates()} duplicates, "
            f"stale {snap.stale()[:5]}"
        )
    if (snap.files, snap.chunks) != (fresh.files, fresh.chunks):
        extra = set(snap.chunks) ^ set(fresh.chunks)
        raise AssertionError(f"differs from a fresh index: {sorted(extra)[:5]}")
    answers_known_queries(root, home, model)


def fresh_index(root: Path, work: Path, model: Path) -> Snapshot:
    home = Path(tempfile.mkdtemp(prefix="fresh-home-", dir=work))
    proc = cli(home, "index", str(root), "--model", str(model))
    if proc.returncode != 0:
        raise AssertionError(f"fresh index failed: {proc.stderr[-2000:]}")
    return snapshot(root, home)


# --- scenarios ------------------------------------------------------------------------------


@dataclass
class KillReport:
    kind: str
    killed: list[tuple[str, int]] = field(default_factory=list)  # (point, hit)
    completed: int = 0  # the drawn hit was past the end: the run finished normally


def hit_counts(root: Path, home: Path, model: Path, work: Path) -> dict[str, int]:
    counts = work / f"counts-{time.monotonic_ns()}.json"
    proc = cli(home, "index", str(root), "--model", str(model), fault=f"count:{counts}")
    if proc.returncode != 0:
        raise AssertionError(f"dry run failed: {proc.stderr[-2000:]}")
    return json.loads(counts.read_text())


def kills(kind: str, n: int, work: Path, model: Path, seed: int = 0) -> KillReport:
    """SIGKILL ``n`` runs of a first (``kind="first"``) or incremental index."""
    rng = random.Random(seed)
    base = corpus(work / f"{kind}-tree")
    base_home = work / f"{kind}-base-home"
    if kind == "incremental":  # a complete index of the tree, then a change to it
        proc = cli(base_home, "index", str(base), "--model", str(model))
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        mutate(base)
    fresh = fresh_index(base, work, model)
    probe_home = work / f"{kind}-probe-home"
    shutil.copytree(base_home, probe_home) if base_home.exists() else probe_home.mkdir()
    counts = hit_counts(base, probe_home, model, work)
    points = [p for p in KILL_POINTS if counts.get(p)]
    report = KillReport(kind)
    for i in range(n):
        point = points[i % len(points)] if i < len(points) else rng.choice(points)
        hit = rng.randint(1, counts[point])
        home = work / f"{kind}-home-{i}"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(base_home, home) if base_home.exists() else home.mkdir()
        proc = cli(home, "index", str(base), "--model", str(model), fault=f"{point}:{hit}:kill")
        if proc.returncode == -signal.SIGKILL:
            report.killed.append((point, hit))
        elif proc.returncode == 0:
            report.completed += 1
        else:
            raise AssertionError(f"{point}:{hit}: exit {proc.returncode}: {proc.stderr[-2000:]}")
        check_after_fault(base, home, model)
        check_recovers(base, home, model, fresh)
        shutil.rmtree(home, ignore_errors=True)
    return report


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path`` if this machine lets us mount one (root on Linux);
    yields whether it did."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path, leave_bytes: int) -> None:
    """Fill the filesystem of ``folder`` until about ``leave_bytes`` are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "ballast", "wb") as fh, contextlib.suppress(OSError):
        chunk = b"\0" * (1 << 20)
        while free > leave_bytes + len(chunk):
            fh.write(chunk)
            free -= len(chunk)
        fh.write(b"\0" * max(0, free - leave_bytes))


def disk_full(work: Path, model: Path) -> list[str]:
    """Index, change files, then index on a full disk (real tmpfs, and injected ENOSPC):
    a clear one-line error, no hang, and the previous index still answers."""
    done = []
    root = corpus(work / "disk-tree")
    for how in ("tmpfs", "injected"):
        home = work / f"disk-home-{how}"
        with small_disk(home, "80m") if how == "tmpfs" else contextlib.nullcontext(True) as ok:
            if not ok:
                continue
            proc = cli(home, "index", str(root), "--model", str(model))
            if proc.returncode != 0:
                raise AssertionError(proc.stderr)
            for i in range(5):
                path = root / "pkg" / f"part{i % 4}" / f"mod{i}.py"
                path.write_text(module_text(i, variant=7 + len(done)), encoding="utf-8")
            if how == "tmpfs":
                fill(home, 200 << 10)
                proc = cli(home, "index", str(root), "--model", str(model), timeout=120)
                (home / "ballast").unlink()
            else:
                proc = cli(
                    home,
                    "index",
                    str(root),
                    "--model",
                    str(model),
                    timeout=120,
                    fault="write.files:1:enospc",
                )
            no_traceback(proc, f"index on a full disk ({how})")
            if proc.returncode != 1 or "disk is full" not in proc.stderr:
                raise AssertionError(f"{how}: exit {proc.returncode}: {proc.stderr[-1500:]}")
            check_after_fault(root, home, model)
            check_recovers(root, home, model, fresh_index(root, work, model))
            done.append(how)
    return done


def read_only_home(work: Path, model: Path) -> None:
    """Searching works from a read-only home; writing says what is wrong, in one line."""
    root = corpus(work / "ro-tree")
    home = work / "ro-home"
    with small_disk(home, "80m") as mounted:
        proc = cli(home, "index", str(root), "--model", str(model))
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
            answers_known_queries(root, home, model)
            # watch used to print an error line per retry, forever (850 MB in 10 min)
            for args in (
                ["index", str(root), "--model", str(model)],
                ["forget", str(root)],
                ["watch", str(root), "--model", str(model)],
            ):
                proc = cli(home, *args, timeout=60)
                no_traceback(proc, f"{args[0]} on a read-only home")
                if proc.returncode != 1 or "codelamp:" not in proc.stderr:
                    raise AssertionError(f"{args[0]}: {proc.returncode} {proc.stderr}")
    not_a_folder = work / "home-is-a-file"
    not_a_folder.write_text("")
    proc = cli(not_a_folder, "index", str(root), "--model", str(model))
    no_traceback(proc, "index with an unusable home")
    if proc.returncode != 1 or "CODELAMP_HOME" not in proc.stderr:
        raise AssertionError(proc.stderr)


def data_deleted_mid_run(work: Path, model: Path) -> None:
    """Delete the data folder while an index runs: a clean end, then a clean re-index."""
    root = corpus(work / "deleted-tree", modules=60)
    home = work / "deleted-home"
    env = dict(os.environ, CODELAMP_HOME=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "index", str(root), "--model", str(model)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        projects = home / "data" / "projects"
        if any(projects.glob("*/index.lance/chunks_*")) or any(projects.glob("*/index.sqlite")):
            time.sleep(0.5)
            shutil.rmtree(home / "data", ignore_errors=True)
            break
        time.sleep(0.05)
    out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    no_traceback(result, "index with its data folder deleted")
    if proc.returncode not in (0, 1):
        raise AssertionError(f"exit {proc.returncode}: {err[-2000:]}")
    check_after_fault(root, home, model)
    check_recovers(root, home, model, fresh_index(root, work, model))


def wait_until_idle(root: Path, home: Path, last_output: list[float]) -> None:
    """Until the watcher has neither held the project's writer lock nor printed anything
    for QUIET_WATCH_S (a round holds the lock from start to end)."""
    from app.core.lock import holder_of

    deadline = time.monotonic() + RUN_TIMEOUT_S
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        with using_home(home):
            busy = holder_of(root) is not None
        now = time.monotonic()
        if busy:
            idle_since = now
        if now - max(idle_since, last_output[0]) >= QUIET_WATCH_S:
            return
        time.sleep(0.1)
    raise AssertionError("the watcher did not go idle after the storm")


@dataclass
class StormReport:
    operations: int = 0
    searches: int = 0
    second_writer: str = ""


def storm(work: Path, model: Path, operations: int, seconds: float, seed: int = 0) -> StormReport:
    """`codelamp watch` + a second writer + searches in a loop while files churn; then the
    index (after the watcher's last flush) equals a fresh index of the final tree."""
    rng = random.Random(seed)
    root = corpus(work / "storm-tree", modules=20)
    home = work / "storm-home"
    env = dict(os.environ, CODELAMP_HOME=str(home))
    report = StormReport()
    proc = cli(home, "index", str(root), "--model", str(model))
    if proc.returncode != 0:
        raise AssertionError(proc.stderr)
    watch_log = work / "storm-watch.stderr"
    with watch_log.open("w") as log_file:
        watch = subprocess.Popen(
            [sys.executable, "-m", "app", "watch", str(root), "--model", str(model), "--json"],
            env=env,
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    stop = threading.Event()
    errors: list[str] = []
    last_output = [time.monotonic()]

    def read_watch() -> None:  # keep the pipe drained, and note when it last spoke
        for _line in watch.stdout:
            last_output[0] = time.monotonic()

    reader = threading.Thread(target=read_watch, daemon=True)
    reader.start()

    def search_loop() -> None:
        while not stop.is_set():
            p = cli(home, "search", str(root), "summarize rows", "--model", str(model), "--json")
            if p.returncode != 0 or "Traceback" in p.stderr:
                errors.append(p.stderr[-1000:])
            report.searches += 1

    searcher = threading.Thread(target=search_loop, daemon=True)
    try:
        time.sleep(3)  # the watcher's start-up index (nothing to do) and observer
        searcher.start()
        names: list[Path] = []
        interval = seconds / max(operations, 1)
        for i in range(operations):
            op = rng.random()
            if op < 0.4 or not names:
                path = root / "churn" / f"d{rng.randint(0, 9)}" / f"c{i}.py"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(module_text(i, variant=rng.randint(0, 5)), encoding="utf-8")
                names.append(path)
            elif op < 0.65:
                path = rng.choice(names)
                path.write_text(module_text(i, variant=rng.randint(6, 9)), encoding="utf-8")
            elif op < 0.85:
                path = names.pop(rng.randrange(len(names)))
                target = path.with_name(f"r{i}.py")
                path.rename(target)
                names.append(target)
            else:
                names.pop(rng.randrange(len(names))).unlink()
            report.operations += 1
            if i == operations // 2:  # a second writer: it waits its turn, then writes
                p = cli(home, "index", str(root), "--model", str(model), "--json")
                report.second_writer = f"exit {p.returncode}"
                if p.returncode != 0 or "Traceback" in p.stderr:
                    errors.append(f"index during watch: {p.returncode} {p.stderr[-1000:]}")
            time.sleep(interval)
        # SIGTERM gives a watcher only a moment to finish: let it catch up first.
        wait_until_idle(root, home, last_output)
    finally:
        stop.set()
        watch.send_signal(signal.SIGTERM)
        try:
            watch.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            watch.kill()
            errors.append("codelamp watch did not stop after SIGTERM")
        reader.join(timeout=10)  # ends at the pipe's end
        watch.stdout.close()
        searcher.join(timeout=60)
    if watch.returncode != 0 or "Traceback" in watch_log.read_text():
        errors.append(f"watch exited {watch.returncode}: {watch_log.read_text()[-1000:]}")
    if errors:
        raise AssertionError("; ".join(errors[:3]))
    snap = snapshot(root, home)
    fresh = fresh_index(root, work, model)
    if (snap.files, snap.chunks) != (fresh.files, fresh.chunks) or snap.duplicates():
        extra = sorted(set(snap.files) ^ set(fresh.files))[:5]
        raise AssertionError(f"after the storm the index differs from a fresh one: {extra}")
    return report


# --- the command --------------------------------------------------------------------------


def default_model() -> Path:
    from app.core.default_model import install_default_model

    return install_default_model().path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--long", action="store_true", help="the full suite (~15 min)")
    parser.add_argument("--model", type=Path, help="GGUF file (default: the default model)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_kills, storm_ops, storm_s = (24, 2000, 60.0) if args.long else (4, 150, 10.0)
    model = args.model or default_model()
    work = Path(tempfile.mkdtemp(prefix="codelamp-torture-"))
    started = time.monotonic()
    try:
        for kind in ("first", "incremental"):
            r = kills(kind, n_kills, work, model, seed=args.seed)
            print(
                f"kills, {kind} index: {len(r.killed)} killed "
                f"({', '.join(sorted({p for p, _ in r.killed}))}), {r.completed} ran to "
                "the end; every one recovered",
                flush=True,
            )
        print(
            f"full disk: {', '.join(disk_full(work, model))}: clear error, old index kept",
            flush=True,
        )
        read_only_home(work, model)
        print("read-only home: searches work, writes say why", flush=True)
        data_deleted_mid_run(work, model)
        print("data folder deleted mid-run: clean end, clean re-index", flush=True)
        s = storm(work, model, storm_ops, storm_s, seed=args.seed)
        print(
            f"storm: {s.operations} file operations, {s.searches} searches, a second "
            f"writer ({s.second_writer}); index == fresh index",
            flush=True,
        )
        print(f"torture: all passed in {time.monotonic() - started:.0f} s; failures 0")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
