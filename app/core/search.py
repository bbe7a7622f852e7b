"""Find code by meaning (vectors), by words (BM25), both fused, or by exact text.

Hybrid, the default, runs both searches and fuses their rankings by reciprocal rank
fusion: meaning finds code that uses other words than the query; words find exact
identifiers that a small embedding model blurs. Keywords (BM25 alone) needs no model, nor
do Text and Regex, which list every matching line of the indexed files (app/core/grep.py).

A ranked result is a definition, shown by its best line: the one that mentions the most
query words (identifiers split, so ``parse config`` finds ``parse_config``), else its
signature. ``highlights`` mark the query words, or the matches, in that line.

Vector search is exact whenever the vectors fit a memory budget (100k chunks of the default
model take 154 MB): one matrix product in RAM beats LanceDB's flat scan by 25x and any
approximate index in recall. Larger indexes use the IVF index that the store builds.

Related code (:meth:`Searcher.related`) needs no model either: the definition at a file's
line is compared, by the vectors the index stores for it, with every other one.
:meth:`Searcher.definition_at` gives that definition whole, as the file reads now.

Nothing the user types reaches the storage as SQL or as full-text syntax. Languages are
checked against the ones indexed and paths matched against the indexed paths, so a filter
is a list of values taken from the index (quoted by the storage, or looked up in Arrow for
the in-RAM matrix); a file named for related code must be one the index lists; a query
goes to the full-text index as plain words only (:func:`fts_query`).
"""

from __future__ import annotations

import bisect
import difflib
import posixpath
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.core import damage, grep
from app.core.embedder import PROBE_MIN_COSINE, Embedder, probe_cosine
from app.core.errors import CodeLampError, UsageError
from app.core.files import decode
from app.core.lexical import find_words, fts_query, query_words
from app.core.models import check_dims
from app.core.modes import SearchMode, language_names, unknown_language
from app.core.ranking import Ranking, rerank
from app.core.remote import RemoteEmbedder
from app.core.storage import Chunks, Filter, ProjectStore, index_command
from app.core.storage.base import RESULT_COLUMNS

if TYPE_CHECKING:
    from app.core.chunking import Chunk

# Reciprocal rank fusion's constant. The usual 60 (Cormack et al., tuned for many ranked
# lists of web documents) lets a definition ranked modestly by both lists beat the one that
# the vector search ranks first. With two lists, a small constant trusts the top of each:
# scripts/eval_quality.py gives hybrid MRR@10 0.536 at 60, 0.560 at 2, 0.564 at 1.
RRF_K = 1
READ_ATTEMPTS = 3
# BM25 scores that agree to this many decimals are equal (LanceDB computes in float32).
# The storage is asked for this many more results than needed, and more while the last
# ones tie with the one at the cut, so that ties there are decided by place too.
SCORE_DECIMALS = 4
TIE_MARGIN = 10
# A shared index changes under its readers, with no watcher here to say so: a searcher
# looks for a newer commit at most this often.
SHARED_RECHECK_S = 30.0
# Longer queries are refused rather than cut: the model reads only a query's first 510
# tokens (about 2,000 characters) and full-text search its first 256 words, so anything
# past this limit would be ignored without the user knowing.
MAX_QUERY_CHARS = 10_000
# Control characters (NUL, terminal escapes; tab and newlines stay) and lone surrogates
# (undecodable bytes from a terminal): neither means anything to a search, and a lone
# surrogate cannot even be encoded for the model or LanceDB.
_UNREADABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# A snippet is one line, cut to this many characters around its first highlight.
SNIPPET_CHARS = 300
SNIPPET_CONTEXT = 40  # characters kept before a highlight that a cut would hide
# Lines above a definition's signature: blank, decorators and annotations, Rust
# attributes, comments. (Markdown's "# Heading" is its signature: only blanks are skipped.)
_PREAMBLE = re.compile(r"\s*(?:$|@|#!?\[|//|/\*|\*|--|#(?:\s|!|$))")
_BLANK = re.compile(r"\s*$")
_T = TypeVar("_T")


@dataclass
class SearchResult:
    """A definition (ranked modes) or a line (Text, Regex: ``start_line == end_line``)."""

    path: str
    start_line: int
    end_line: int
    symbol: str  # the definition; for a line, the indexed one around it, or ""
    language: str
    score: float  # ranked modes: higher is better; Text, Regex: matches on the line
    snippet: str = ""  # one line, without its indentation, at most SNIPPET_CHARS long
    text: str = ""  # the chunk that matched; for a line, the whole line
    snippet_line: int = 0  # the snippet's line number in the file (1-based)
    highlights: list[tuple[int, int]] = field(default_factory=list)  # [start, end) in snippet
    project: str = ""  # the project's root, when the results of several are merged
    row_id: int = field(default=-1, repr=False)

    def as_dict(self) -> dict:
        """The result as the CLI's JSON gives it: the snippet, not the whole chunk."""
        d = asdict(self)
        d.pop("row_id")
        d.pop("text")
        if not self.project:
            d.pop("project")
        return d

    def overlaps(self, other: SearchResult) -> bool:
        return self.path == other.path and (
            self.start_line <= other.end_line and other.start_line <= self.end_line
        )


@dataclass
class _Filter(Filter):
    """Language and path restrictions, for the storage and as a row mask for numpy.
    Every value comes from the index, never from what the user typed."""

    _path_set: frozenset[str] | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        """Nothing can match."""
        return self.paths == []

    def admits(self, path: str, language: str) -> bool:
        if self.languages and language not in self.languages:
            return False
        if self.paths is not None:
            if self._path_set is None:
                self._path_set = frozenset(self.paths)
            return path in self._path_set
        return True


class _Matrix:
    """Every vector of an index in RAM, with what is needed to filter and rank. Raises
    ValueError for vectors that damage to the data file turned into garbage: they would
    rank first for every query, or make the scores NaN."""

    def __init__(self, chunks: Chunks) -> None:
        data = chunks.scan(["vector", *RESULT_COLUMNS])
        vectors = data.column("vector").combine_chunks()
        dims = vectors.type.list_size
        self.vectors = vectors.values.to_numpy(zero_copy_only=False).reshape(-1, dims)
        if bad := damage.corrupt_vectors(self.vectors):
            raise ValueError(f"{bad} of {len(self.vectors)} stored vectors are corrupt")
        self.meta = {
            name: data.column(name).to_numpy(zero_copy_only=False) for name in RESULT_COLUMNS
        }
        self.row_ids = data.column("_rowid").to_numpy()
        self._columns = {name: data.column(name) for name in ("language", "path")}

    def search(self, query: np.ndarray, n: int, flt: _Filter) -> list[SearchResult]:
        scores = self.vectors @ query
        for name, allowed in (("language", flt.languages), ("path", flt.paths)):
            if allowed is not None:
                scores[~self._rows_in(name, allowed)] = -np.inf
        n = min(n, int(np.isfinite(scores).sum()))
        if n == 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        m = self.meta
        return [
            SearchResult(
                m["path"][i],
                int(m["def_start"][i]),
                int(m["def_end"][i]),
                m["symbol"][i],
                m["language"][i],
                float(scores[i]),
                row_id=int(self.row_ids[i]),
            )
            for i in top
        ]

    def _rows_in(self, column: str, values: list[str]) -> np.ndarray:
        """A row mask, by one hash lookup per row in Arrow. ``np.isin`` on object arrays
        compares every row with every value: 20 queries on a synthetic 50k-chunk index,
        filtered to half of its 2,500 files, took 11.7 s that way and take 0.22 s this way
        (0.19 s unfiltered)."""
        mask = pc.is_in(self._columns[column], value_set=pa.array(values, pa.string()))
        return mask.to_numpy(zero_copy_only=False)


class ModelMismatch(CodeLampError):
    """The index was built with another model than the one searching it."""


def _check_model(store: ProjectStore, embedder: Embedder | RemoteEmbedder) -> None:
    """Queries must be embedded by the model that built the index: the same model id, or
    (a server's index searched with a local copy of its model, or the other way round)
    the same probe vector."""
    model_id = store.model_id
    if not model_id:  # nothing committed yet: any model will do
        return
    if store.dims:
        check_dims(embedder.label, embedder.dim, store.dims, model_id, str(store.root))
    if model_id == embedder.model_id:
        embedder.expect(store.probe_for(model_id))  # a server: does it still run it?
        return
    recorded = store.probe_for(model_id)
    if recorded is None or probe_cosine(embedder.probe(), recorded) < PROBE_MIN_COSINE:
        raise ModelMismatch(
            f"The index of {store.root} was built with {model_id}, not "
            f"{embedder.model_id}. Search with the model it was built with (--model FILE, "
            f"or --embedder URL for a server), re-index with "
            f"`{index_command(store.root, store.location)}`, "
            "or search by Keywords, Text or Regex, which need no model."
        )


class Searcher:
    """Searches one project's index as it was when opened; :meth:`refresh` to catch up."""

    def __init__(
        self,
        store: ProjectStore,
        embedder: Embedder | RemoteEmbedder | None = None,
        ranking: Ranking | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.ranking = ranking or Ranking()
        if embedder is not None:
            _check_model(store, embedder)
        self.last_total = 0  # see search()
        self.refresh()

    def refresh(self) -> None:
        """See the latest committed index (after a re-index or a watched change)."""
        self.checked = time.monotonic()
        self.chunks = self.store.chunks()
        self.has_ann = self.store.has_ann
        self.rows = self.chunks.count()
        self._matrix: _Matrix | None = None
        self._paths: list[str] | None = None
        self._languages: list[str] | None = None
        self._last_filter: tuple[tuple, _Filter] | None = None
        self._files: dict[str, _IndexedFile] | None = None

    def search(
        self,
        query: str,
        k: int = 10,
        mode: SearchMode | str = SearchMode.HYBRID,
        language: str | None = None,
        path_glob: str | None = None,
    ) -> list[SearchResult]:
        """The ``k`` best definitions for ``query``, or with Text and Regex the first ``k``
        matching lines, by path and line. :attr:`last_total` then says how many were found
        in all: every matching line for Text and Regex (more than ``k`` when the answer was
        cut), the number of results for the other modes.

        Raises :class:`UsageError` for input that cannot work (an unknown mode or language,
        a bad glob or regex, k < 1, an overlong query); a blank query finds nothing."""
        mode = _mode(mode)
        _check_k(k)
        embedder = self.embedder if mode.needs_model else None
        if mode.needs_model and embedder is None:
            raise CodeLampError(
                f"{mode.label} search needs a model; Keywords, Text and "
                "Regex search work without one."
            )
        self.last_total = 0
        query = clean_query(query)
        if not query:
            return []
        lines = grep.LinePattern(query, mode is SearchMode.REGEX) if mode.per_line else None
        vec = embedder.embed_query(query) if embedder is not None else None

        def find() -> list[SearchResult]:
            flt = self._filter(language, path_glob)
            if lines is not None:
                results, self.last_total = self._grep(lines, k, flt)
            else:
                results = self._search(query, vec, k, mode, flt)
                self.last_total = len(results)
            return results

        return self._reading(find)

    def related(
        self,
        path: str,
        line: int,
        k: int = 10,
        language: str | None = None,
        path_glob: str | None = None,
    ) -> list[SearchResult]:
        """The ``k`` definitions most like the indexed one at ``path:line``, best first.

        ``path`` is relative to the project's root (an absolute path inside it will do);
        ``line`` is 1-based. The definition is the one :meth:`definition_at` gives; it is
        compared by the vectors the index stores, so no model is needed: the mean of its
        chunks' vectors (a split function is all of its parts), normalised, against every
        chunk, ranked by cosine like vector search. It is left out of its own results, and
        so is anything that overlaps it. ``language`` and ``path_glob`` filter as in
        :meth:`search`. Raises :class:`UsageError` as :meth:`definition_at` does, and for
        k < 1."""
        _check_k(k)

        def find() -> list[SearchResult]:
            flt = self._filter(language, path_glob)
            source = self._definition(path, line)
            if flt.empty:
                return []
            mean = source.vectors.mean(axis=0)
            pool = min(max(50, k * 5) + len(source.vectors), self.rows)
            ranked = [
                r
                for r in self._vector(mean / np.linalg.norm(mean), pool, flt)
                if not r.overlaps(source.result)
            ]
            results = _dedupe(ranked, k)
            self._fill_text(results, [])
            return results

        return self._reading(find)

    def definition_at(self, path: str, line: int) -> SearchResult:
        """The indexed definition around ``path:line`` (a method, not the class around it;
        the consecutive parts of a split one together): ``start_line`` and ``end_line``
        are its first and last lines, ``text`` is those lines as the file reads now (as
        the index stores them where the file is not here: a shared index without a
        checkout), ``snippet`` its signature, ``score`` 0. A line between definitions
        gives the nearest one (the one below, when two are as near).

        ``path`` and ``line`` as for :meth:`related`. Raises :class:`UsageError` for a
        path outside the project or not in its index, and a line outside the file."""
        return self._reading(lambda: self._definition(path, line).result)

    def _reading(self, read: Callable[[], _T]) -> _T:
        """What ``read`` reads from the index. A version compacted away under it is read
        again at the newest commit; damage that persists is noted and reported."""
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                with damage.native_stderr_held():
                    self._catch_up()
                    return read()
            except BaseException as exc:
                if not damage.read_failure(exc):
                    raise
                if (problem := self.store.location.unavailable(exc)) is not None:
                    raise problem from exc
                # Most likely a writer (the watcher, another process) compacted away the
                # version this searcher reads: catch up and ask again. Real damage fails
                # every time, and is noted so that the next index rebuilds.
                if attempt == READ_ATTEMPTS:
                    raise self.store.damage_found(damage.lance_detail(exc)) from exc
                self.store = self.store.reopen()
                self.refresh()
        raise AssertionError("unreachable")

    def _catch_up(self) -> None:
        """A shared index: see a newer commit, if there is one (now and then)."""
        if self.store.location.shared and time.monotonic() - self.checked >= SHARED_RECHECK_S:
            self.checked = time.monotonic()
            if self.store.newer_commit():
                self.store = self.store.reopen()
                self.refresh()

    def _search(
        self, query: str, vec: np.ndarray | None, k: int, mode: SearchMode, flt: _Filter
    ) -> list[SearchResult]:
        """Ranked modes; ``vec`` is the query's vector for those that need the model."""
        if flt.empty or not self.rows:
            return []
        pool = min(max(50, k * 5), self.rows)  # a huge k would overflow LanceDB's limit
        if mode is SearchMode.KEYWORDS:
            ranked = self._lexical(query, pool, flt)
        elif vec is None:  # search() embeds the query for every mode that needs a model
            raise AssertionError(f"{mode.label} search without the query's vector")
        elif mode is SearchMode.SEMANTIC:
            ranked = self._vector(vec, pool, flt)
        else:
            fused = _fuse(
                [
                    (self._vector(vec, pool, flt), 1.0),
                    (self._lexical(query, pool, flt), self.ranking.lexical),
                ]
            )
            ranked = rerank(fused, query, self.ranking)
        results = _dedupe(ranked, k)
        self._fill_text(results, query_words(query))
        return results

    def _vector(self, vec: np.ndarray, n: int, flt: _Filter) -> list[SearchResult]:
        if not self.has_ann:
            if self._matrix is None:
                self._matrix = _Matrix(self.chunks)
            return self._matrix.search(vec, n, flt)
        return self._rows(self.chunks.nearest(vec, n, flt), lambda r: 1.0 - r["_distance"])

    def _lexical(self, query: str, n: int, flt: _Filter) -> list[SearchResult]:
        terms = fts_query(query)
        if not terms:
            return []
        asked = n + TIE_MARGIN
        while True:
            table = self.chunks.full_text(terms, asked, flt)
            found = self._rows(table, lambda r: r["_score"])
            # Equal scores (copies of a chunk, one-line methods) come in whatever order
            # the storage keeps: they are ordered by place, so every storage ranks alike,
            # which needs all of those that tie at the cut.
            found.sort(key=lambda r: (-round(r.score, SCORE_DECIMALS), r.path, r.start_line))
            cut_ties = (
                len(found) == asked
                and len(found) > n
                and (
                    round(found[n - 1].score, SCORE_DECIMALS)
                    == round(found[-1].score, SCORE_DECIMALS)
                )
            )
            if not cut_ties:
                return found[:n]
            asked *= 2

    @staticmethod
    def _rows(table: pa.Table, score: Callable[[dict[str, Any]], float]) -> list[SearchResult]:
        rows = table.to_pylist()
        return [
            SearchResult(
                r["path"],
                r["def_start"],
                r["def_end"],
                r["symbol"],
                r["language"],
                float(score(r)),
                row_id=r["_rowid"],
            )
            for r in rows
        ]

    def _fill_text(self, results: list[SearchResult], words: list[str]) -> None:
        """Fetch the source text of the final results only, and pick their snippets."""
        if not results:
            return
        rows = self.chunks.take([r.row_id for r in results], ["text", "start_line"]).to_pylist()
        by_id = {row["_rowid"]: row for row in rows}
        for r in results:
            row = by_id.get(r.row_id, {"text": "", "start_line": r.start_line})
            r.text = row["text"]
            _show_best_line(r, row["start_line"], words)

    def _grep(
        self, pattern: grep.LinePattern, k: int, flt: _Filter
    ) -> tuple[list[SearchResult], int]:
        """The first ``k`` lines that match, and how many do in all."""
        if flt.empty:
            return [], 0
        indexed = self._indexed_files()
        paths = [p for p in sorted(indexed) if flt.admits(p, indexed[p].language)]
        if self.store.root.is_dir():
            files = (
                (path, pattern.file_lines(data))
                for path, data in grep.files_on_disk(self.store.root, paths)
            )
        else:  # a shared index, its project not here: the text it stores (read each time)
            files = (
                (path, pattern.lines(text))
                for path, text in grep.stored_files(self._stored_chunks(paths))
            )
        matches, total = grep.grep(files, k)
        return [indexed[m.path].line_result(m, pattern) for m in matches], total

    def _indexed_files(self) -> dict[str, _IndexedFile]:
        """Every indexed file that has chunks, with its language and definitions."""
        if self._files is None:
            columns = self.chunks.scan(RESULT_COLUMNS).to_pydict()
            self._files = {}
            for path, start, end, language, symbol in zip(
                *(columns[c] for c in RESULT_COLUMNS), strict=True
            ):
                file = self._files.setdefault(path, _IndexedFile(language))
                if symbol:
                    file.definitions.append((start, end, symbol))
            for file in self._files.values():
                file.definitions.sort()
        return self._files

    def _definition(self, path: str, line: int) -> _Definition:
        """The chunks of the indexed definition at ``path:line``: those that share the
        definition (``def_start``, ``def_end``) of the chunk holding that line or, on a line
        no chunk holds (a blank one), of the nearest chunk."""
        rel = self._indexed_path(path)
        columns = ["vector", "start_line", "end_line", "text", *RESULT_COLUMNS]
        chunks = self.chunks.scan(columns, paths=[rel]).to_pylist()
        if not chunks:
            raise UsageError(f"{rel} is indexed but holds no code (it is empty or blank).")
        if line < 1:
            raise UsageError(f"Lines are numbered from 1; there is no line {line} in {rel}.")
        chunks.sort(key=itemgetter("_rowid"))  # stored order, which grep.stored_files needs
        lines = self._lines_now(rel, chunks)
        if line > len(lines):
            raise UsageError(f"{rel} has {len(lines)} lines; line {line} is past its end.")

        def distance(c: dict) -> int:
            return max(c["start_line"] - line, line - c["end_line"], 0)

        nearest = min(chunks, key=lambda c: (distance(c), -c["start_line"]))
        start, end = nearest["def_start"], nearest["def_end"]
        own = [c for c in chunks if (c["def_start"], c["def_end"]) == (start, end)]
        r = SearchResult(
            rel,
            start,
            end,
            nearest["symbol"],
            nearest["language"],
            0.0,
            text="\n".join(lines[start - 1 : end]),
        )
        _show_best_line(r, start, [])
        return _Definition(r, np.array([c["vector"] for c in own], dtype=np.float32))

    def _indexed_path(self, path: str) -> str:
        """``path`` as the index names it: relative to the root, POSIX, without ``./``.
        Raises UsageError for a path outside the root, or one the index does not list."""
        root, given = self.store.root, Path(path)
        if given.is_absolute():
            inside = [p for p in (given, given.resolve()) if p.is_relative_to(root)]
            if not inside:
                raise UsageError(f"{path} is not inside {root}, the folder of this index.")
            given = inside[0].relative_to(root)
        rel = posixpath.normpath(given.as_posix())
        indexed = self._indexed_paths()
        if rel not in indexed:
            name = posixpath.basename(rel)
            same_name = [p for p in indexed if posixpath.basename(p) == name]
            alike = difflib.get_close_matches(rel, same_name, n=3, cutoff=0)
            hint = f" Did you mean {' or '.join(alike)}?" if alike else ""
            raise UsageError(
                f"{rel} is not in the index of {root} (indexed files: "
                f"{len(indexed):,}). Check the path, relative to the "
                f"project.{hint}"
            )
        return rel

    def _lines_now(self, rel: str, chunks: list[dict]) -> list[str]:
        """The lines of an indexed file as it reads now; as the index stores them when it
        cannot be read here (a shared index without a checkout, a file deleted since)."""
        on_disk = next(grep.files_on_disk(self.store.root, [rel]), None)
        if on_disk is not None:
            text = decode(on_disk[1])
        else:
            stored = grep.stored_files((rel, c["start_line"], c["text"]) for c in chunks)
            text = next(stored)[1]
        lines = text.split("\n")
        return lines[:-1] if text.endswith("\n") else lines

    def _stored_chunks(self, paths: list[str]) -> list[tuple[str, int, str]]:
        """(path, start line, text) of the chunks of ``paths``, by path, in stored order."""
        if not paths:
            return []
        data = self.chunks.scan(["path", "start_line", "text"], paths=paths).to_pydict()
        rows = list(
            zip(data["path"], data["_rowid"], data["start_line"], data["text"], strict=True)
        )
        return [(path, start, text) for path, _, start, text in sorted(rows)]

    def _filter(self, language: str | None, path_glob: str | None) -> _Filter:
        """The last filter is kept: matching a glob against 50k paths takes 35 ms, and a
        session (the window, ``codelamp search -``) asks many queries with the same one."""
        key = (language, path_glob)
        if self._last_filter is None or self._last_filter[0] != key:
            flt = _Filter(self._matching_languages(language), self._matching_paths(path_glob))
            self._last_filter = (key, flt)
        return self._last_filter[1]

    def _matching_languages(self, language: str | None) -> list[str] | None:
        """``"python, Go"`` -> ``["python", "go"]``, each one the index has; None: every
        language. A name the index lacks is a typo or a wrong project, not an empty
        answer: the error lists what there is."""
        asked = language_names(language)
        if not asked:
            return None
        if problem := unknown_language(
            language, self._indexed_languages(), f"in {self.store.root}"
        ):
            raise UsageError(problem)
        return asked

    def _matching_paths(self, path_glob: str | None) -> list[str] | None:
        """The indexed paths that a .gitignore-style glob (``*.py``, ``src/``,
        ``tests/**/test_*.py``) matches; None: no glob, or one that matches every path."""
        return glob_filter(path_glob, self._indexed_paths()) if path_glob else None

    def _indexed_languages(self) -> list[str]:
        if self._languages is None:
            column = self.chunks.scan(["language"]).column("language")
            self._languages = sorted(pc.unique(column).to_pylist())
        return self._languages

    def _indexed_paths(self) -> list[str]:
        if self._paths is None:
            self._paths = self.store.indexed_paths()
        return self._paths


def clean_query(query: str) -> str:
    """``query`` without control characters and surrounding blanks; a UsageError when it
    is too long to search whole."""
    query = _UNREADABLE.sub(" ", query).strip()
    if len(query) > MAX_QUERY_CHARS:
        raise UsageError(
            f"The query is {len(query):,} characters long; the limit is "
            f"{MAX_QUERY_CHARS:,}. Search with a shorter piece of it: only the start of "
            "a long query counts anyway."
        )
    return query


def glob_filter(path_glob: str, paths: list[str]) -> list[str] | None:
    """The ``paths`` that a .gitignore-style glob (``*.py``, ``src/``,
    ``tests/**/test_*.py``) matches; None when it matches every one."""
    import pathspec

    try:
        spec = pathspec.GitIgnoreSpec.from_lines([path_glob])
    except (ValueError, re.error) as exc:  # pathspec's own check, then the regex's
        why = f" ({exc.msg})" if isinstance(exc, re.error) else ""
        raise UsageError(
            f"{path_glob!r} is not a valid path pattern{why}. Use .gitignore syntax, "
            "e.g. '*.py', 'src/' or 'tests/**/test_*.py'."
        ) from exc
    matching = list(spec.match_files(paths))
    return None if len(matching) == len(paths) else matching


def grep_unindexed(
    root: Path,
    languages: dict[str, str],
    query: str,
    k: int,
    regex: bool,
    language: str | None = None,
    path_glob: str | None = None,
) -> tuple[list[SearchResult], int]:
    """Text or Regex search of files that have no index yet: ``languages`` maps each file
    that may be searched (relative to ``root``) to its language. The first ``k`` matching
    lines, by path and line, and how many match in all; no definition is known around a
    line. ``language`` and ``path_glob`` filter as in :meth:`Searcher.search`."""
    query = clean_query(query)
    asked = language_names(language)
    paths = sorted(path for path, name in languages.items() if not asked or name in asked)
    if path_glob and (matching := glob_filter(path_glob, paths)) is not None:
        paths = matching
    if not query:
        return [], 0
    pattern = grep.LinePattern(query, regex)
    files = ((path, pattern.file_lines(data)) for path, data in grep.files_on_disk(root, paths))
    matches, total = grep.grep(files, k)
    return [_IndexedFile(languages[m.path]).line_result(m, pattern) for m in matches], total


def definition_spans(chunks: Sequence[Chunk]) -> list[tuple[int, int]]:
    """For each chunk (in file order), the lines of the whole definition it belongs to.

    The parts of a split definition share their symbol and follow each other, so a search
    hit on any part can name the whole function. Other chunks span just themselves. The
    indexer stores these spans as ``def_start`` and ``def_end``.
    """
    spans: list[tuple[int, int]] = []
    first = 0
    for last, chunk in enumerate(chunks):
        following = chunks[last + 1] if last + 1 < len(chunks) else None
        if following is None or not _same_definition(chunk, following):
            spans += [(chunks[first].start_line, chunk.end_line)] * (last - first + 1)
            first = last + 1
    return spans


def _same_definition(a: Chunk, b: Chunk) -> bool:
    return (
        bool(a.symbol)
        and a.symbol == b.symbol
        and a.path == b.path
        and b.start_line <= a.end_line + 2
    )


def _fuse(rankings: list[tuple[list[SearchResult], float]]) -> list[SearchResult]:
    """Reciprocal rank fusion: score = sum over rankings of weight / (RRF_K + rank), where
    a ranking ranks definitions, each at its best chunk."""
    fused: dict[tuple[str, int, int], SearchResult] = {}
    scores: dict[tuple[str, int, int], float] = {}
    for ranking, weight in rankings:
        seen = set()
        for r in ranking:
            key = (r.path, r.start_line, r.end_line)
            if key in seen:
                continue
            seen.add(key)
            fused.setdefault(key, r)
            scores[key] = scores.get(key, 0.0) + weight / (RRF_K + len(seen))
    for key, r in fused.items():
        r.score = scores[key]
    return sorted(fused.values(), key=lambda r: r.score, reverse=True)


def _dedupe(results: list[SearchResult], k: int) -> list[SearchResult]:
    """Keep the best of results that overlap in the same file."""
    kept: list[SearchResult] = []
    for r in sorted(results, key=lambda r: r.score, reverse=True):
        if not any(r.overlaps(other) for other in kept):
            kept.append(r)
            if len(kept) == k:
                break
    return kept


def _check_k(k: int) -> None:
    if k < 1:
        raise UsageError(f"The number of results must be at least 1, not {k}.")


def _mode(mode: SearchMode | str) -> SearchMode:
    try:
        return SearchMode(mode)
    except ValueError:
        names = ", ".join(m.value for m in SearchMode)
        raise UsageError(f"Unknown search mode {mode!r}; use one of {names}.") from None


@dataclass
class _Definition:
    """An indexed definition: what :meth:`Searcher.definition_at` gives, and the stored
    vectors of its chunks."""

    result: SearchResult
    vectors: np.ndarray  # one row per chunk


@dataclass
class _IndexedFile:
    """What the index knows of a file, for the lines Text and Regex find in it."""

    language: str
    # (start, end, symbol), sorted. They never overlap: each is one chunk, or the
    # consecutive parts of a split definition (definition_spans).
    definitions: list[tuple[int, int, str]] = field(default_factory=list)

    def symbol_at(self, line: int) -> str:
        """The definition around ``line``: the last to start at or before it, if it
        reaches that far; else ""."""
        i = bisect.bisect_right(self.definitions, line, key=itemgetter(0)) - 1
        return self.definitions[i][2] if i >= 0 and self.definitions[i][1] >= line else ""

    def line_result(self, match: grep.LineMatch, pattern: grep.LinePattern) -> SearchResult:
        spans = pattern.spans(match.text)
        r = SearchResult(
            match.path,
            match.line,
            match.line,
            self.symbol_at(match.line),
            self.language,
            float(max(1, len(spans))),
            text=match.text,
            snippet_line=match.line,
        )
        r.snippet, r.highlights = _excerpt(match.text, spans)
        return r


def _show_best_line(r: SearchResult, first_line: int, words: list[str]) -> None:
    """Show the line of ``r.text`` (which starts at file line ``first_line``) that mentions
    the most of ``words``, the earliest of equals; with none, the definition's signature."""
    lines = r.text.split("\n")
    best, best_found, best_spans = -1, 0, []
    for i, line in enumerate(lines):
        found, spans = find_words(line, words)
        if len(found) > best_found:
            best, best_found, best_spans = i, len(found), spans
    if best < 0:
        best = _signature(lines, r.language)
    r.snippet_line = first_line + best
    r.snippet, r.highlights = _excerpt(lines[best], best_spans)


def _signature(lines: list[str], language: str) -> int:
    """The index of the first line that is not blank, a decorator or a comment; failing
    that, of the first that is not blank."""
    for skipped in (_BLANK if language == "markdown" else _PREAMBLE, _BLANK):
        for i, line in enumerate(lines):
            if not skipped.match(line):
                return i
    return 0


def _excerpt(line: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """``line`` without its indentation and trailing blanks, cut to SNIPPET_CHARS so that
    the first span shows, and ``spans`` (sorted) moved to match: clipped to the cut, empty
    ones dropped."""
    text = line.strip()
    shift = len(line) - len(line.lstrip())
    start = 0
    if spans and spans[0][1] - shift > SNIPPET_CHARS:
        start = max(0, min(spans[0][0] - shift - SNIPPET_CONTEXT, len(text) - SNIPPET_CHARS))
    cut = text[start : start + SNIPPET_CHARS]
    moved = [(max(0, s - shift - start), min(len(cut), e - shift - start)) for s, e in spans]
    return cut, [(s, e) for s, e in moved if s < e]
