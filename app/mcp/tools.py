"""The tools a ``codelamp mcp`` server offers: their descriptions and JSON schemas (what an
agent reads to pick one), the check of their arguments, and what each returns.

Code comes from the files as they are on disk now, never from the index, and only from
inside the served roots. A ranked result shows the lines of its definition around the
line that matched best (``match_line``), at most ``max_lines`` of them, and all results
together about ``max_tokens`` tokens (default :data:`TOKENS_SHOWN`): each result in rank
order gets an equal share of what is left. Tokens are counted with the model's tokenizer
when the model is loaded, else as one per 4 characters (``token_count`` says which).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from app.core import grep
from app.core.embedder import Embedder
from app.core.errors import CodeLampError, UsageError
from app.core.files import decode
from app.core.modes import SearchMode
from app.core.search import Searcher, SearchResult
from app.core.storage import NotIndexed
from app.mcp.projects import ServedProject, ServedProjects

RESULTS = 10  # k by default
MAX_RESULTS = 100
LINES_SHOWN = 40  # max_lines by default: of one result's code
MAX_LINES = 1000
TOKENS_SHOWN = 2000  # max_tokens by default: of all results' code together
MAX_TOKENS = 50_000
LINE_CHARS = 500  # a longer line (minified code) is cut, with "…"
CHARS_PER_TOKEN = 4  # the estimate while no model is loaded
MODES = {
    "hybrid": SearchMode.HYBRID,
    "semantic": SearchMode.SEMANTIC,
    "lexical": SearchMode.KEYWORDS,
    "text": SearchMode.TEXT,
    "regex": SearchMode.REGEX,
}

_PROJECT = {
    "type": "string",
    "description": "Which served project: its folder path or "
    "folder name. Optional when one project is served; search and index_status "
    "cover every served project without it.",
}
_PATH = {
    "type": "string",
    "minLength": 1,
    "description": "A file of the project: relative "
    "to its root (as search results give it), or absolute inside it.",
}
_LINE = {
    "type": "integer",
    "minimum": 1,
    "description": "A 1-based line number in that file, anywhere inside the definition.",
}
_K = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_RESULTS,
    "default": RESULTS,
    "description": f"How many results (default {RESULTS}, at most {MAX_RESULTS}).",
}
_MAX_LINES = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_LINES,
    "default": LINES_SHOWN,
    "description": f"The most lines of code shown per result (default "
    f"{LINES_SHOWN}), around the line that matched best.",
}
_MAX_TOKENS = {
    "type": "integer",
    "minimum": 100,
    "maximum": MAX_TOKENS,
    "default": TOKENS_SHOWN,
    "description": f"About how many tokens of code all "
    f"results show together (default {TOKENS_SHOWN}); each result gets an equal "
    "share of what is left, in rank order.",
}


def _schema(properties: dict, *required: str) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    schema: dict
    run: Callable[[ServedProjects, dict], dict]


class TokenCounter:
    """Tokens of a line of code: the loaded model's tokenizer, else characters / 4."""

    def __init__(self, embedder: Embedder | None) -> None:
        self.embedder = embedder
        self.special = embedder.count_tokens("") if embedder else 0  # [CLS], [SEP]
        self.how = (
            "the model's tokenizer"
            if embedder
            else f"estimated, {CHARS_PER_TOKEN} characters per token"
        )

    def __call__(self, line: str) -> int:
        if self.embedder is None:
            return (len(line) + CHARS_PER_TOKEN) // CHARS_PER_TOKEN  # the line break too
        return self.embedder.count_tokens(line) - self.special


# --- arguments ------------------------------------------------------------------------------


def check_arguments(spec: ToolSpec, arguments: dict) -> dict:
    """The arguments with their defaults, or a UsageError saying in one line what is wrong."""
    error = best_match(Draft202012Validator(spec.schema).iter_errors(arguments))
    if error is not None:
        raise UsageError(f"{spec.name}: {_explain(error)}")
    defaults = {
        name: p["default"] for name, p in spec.schema["properties"].items() if "default" in p
    }
    return defaults | arguments


def _explain(error: ValidationError) -> str:
    name = ".".join(str(part) for part in error.absolute_path) or "arguments"
    value = error.validator_value
    if error.validator == "type":
        return f"{name} must be of type {value}"
    if error.validator == "minimum":
        return f"{name} must be at least {value}"
    if error.validator == "maximum":
        return f"{name} must be at most {value}"
    if error.validator == "enum":
        return f"{name} must be one of {', '.join(map(str, value))}"
    if error.validator == "minLength":
        return f"{name} must not be empty"
    return error.message[:300]  # required, additionalProperties: the value is not repeated


# --- what the tools show --------------------------------------------------------------------


def _file_lines(root: Path, path: str) -> list[str] | None:
    """The lines of a project's file as it is now; None when it cannot be read."""
    data = grep.read_file(os.path.join(root, path), root)
    return None if data is None else decode(data).split("\n")


def _cut(line: str) -> str:
    return line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "…"


def _window(tokens: list[int], best: int, max_lines: int, budget: int) -> tuple[int, int]:
    """The lines [a, b] of a definition (``tokens``: of each line) to show: all of it when
    it fits, else a window grown around line ``best``, a line above for every two below,
    while it has at most ``max_lines`` lines and ``budget`` tokens."""
    last = len(tokens) - 1
    if len(tokens) <= max_lines and sum(tokens) <= budget:
        return 0, last
    a = b = best
    used, grown = tokens[best], 0
    while b - a + 1 < max_lines:
        up = a > 0 and (grown % 3 == 0 or b == last)
        if not up and b == last:
            break
        nxt = a - 1 if up else b + 1
        if used + tokens[nxt] > budget:
            break
        used += tokens[nxt]
        a, b = (nxt, b) if up else (a, nxt)
        grown += 1
    return a, b


def _shown(
    found: list[tuple[ServedProject, SearchResult]],
    max_lines: int,
    max_tokens: int,
    counter: TokenCounter,
    several: bool,
) -> tuple[list[dict], int]:
    """What each result shows, and the tokens of code shown in all."""
    shown, used = [], 0
    files: dict[tuple, list[str] | None] = {}  # a file's lines, read once per call
    for i, (project, r) in enumerate(found):
        budget = (max_tokens - used) // (len(found) - i)
        item = {
            "path": r.path,
            "start_line": r.start_line,
            "end_line": r.end_line,
            "symbol": r.symbol,
            "language": r.language,
            "score": round(r.score, 4),
            "match_line": r.snippet_line or r.start_line,
        }
        if several:
            item["project"] = str(project.root)
        key = (project.root, r.path)
        if key not in files:
            files[key] = _file_lines(project.root, r.path)
        lines = files[key] or []
        first, last = r.start_line - 1, min(r.end_line, len(lines)) - 1
        if first > last:
            item |= {
                "code": "",
                "code_lines": None,
                "note": "the file cannot be read now, or has changed: search again",
            }
            shown.append(item)
            continue
        best = min(max(item["match_line"] - 1, first), last)
        cut = [_cut(line) for line in lines[first : last + 1]]
        tokens = [counter(line) for line in cut]
        a, b = _window(tokens, best - first, max_lines, budget)
        used += sum(tokens[a : b + 1])
        item |= {"code": "\n".join(cut[a : b + 1]), "code_lines": [first + a + 1, first + b + 1]}
        shown.append(item)
    return shown, used


@contextmanager
def _committed(project: ServedProject) -> Iterator[Searcher]:
    """The project's searcher; a CodeLampError naming the progress while there is none."""
    try:
        with project.searching() as searcher:
            yield searcher
    except NotIndexed:
        raise CodeLampError(f"{project.root} has no index yet ({project.not_ready()}).") from None


# --- the tools ------------------------------------------------------------------------------


def search(projects: ServedProjects, args: dict) -> dict:
    query = args["query"]
    if not query.strip():
        raise UsageError("search: the query is blank; say what to look for.")
    mode = MODES[args["mode"]]
    chosen = projects.chosen(args.get("project"))
    k, language, path_glob = args["k"], args.get("language"), args.get("path_glob")
    found: list[tuple[ServedProject, SearchResult]] = []
    notes, total = [], 0
    for project in chosen:
        try:
            with project.searching(mode.needs_model) as searcher:
                results = searcher.search(query, k, mode, language, path_glob)
                total += searcher.last_total
        except NotIndexed:
            regex = mode is SearchMode.REGEX
            how = "Regex" if regex else "Text"
            note = f"{project.root}: no index yet ({project.not_ready()})."
            if not mode.per_line:
                note += (
                    f" {mode.label} search needs it; meanwhile these are lines that "
                    "contain the whole query as typed, in the files on disk."
                )
            notes.append(f"{note} {how} search of the files on disk; symbols are unknown.")
            try:
                results, matching = project.grep_disk(query, k, regex, language, path_glob)
            except UsageError:
                if mode.per_line:
                    raise
                results, matching = [], 0  # a query Text mode cannot take (a line break)
            total += matching
        found += [(project, r) for r in results]
    if not mode.per_line:
        found.sort(key=lambda pr: pr[1].score, reverse=True)
    found = found[:k]
    counter = TokenCounter(projects.models.loaded())
    shown, tokens = _shown(found, args["max_lines"], args["max_tokens"], counter, len(chosen) > 1)
    answer = {
        "query": query,
        "mode": args["mode"],
        "results": shown,
        "total": total if mode.per_line else len(shown),
        "tokens": tokens,
        "token_count": counter.how,
    }
    if notes:
        answer["note"] = " ".join(notes)
    return answer


def find_related(projects: ServedProjects, args: dict) -> dict:
    project, path = projects.for_path(args["path"], args.get("project"))
    with _committed(project) as searcher:
        results = searcher.related(path, args["line"], k=args["k"])
    counter = TokenCounter(projects.models.loaded())
    shown, tokens = _shown(
        [(project, r) for r in results], args["max_lines"], args["max_tokens"], counter, False
    )
    return {
        "path": path,
        "line": args["line"],
        "results": shown,
        "tokens": tokens,
        "token_count": counter.how,
    }


def read_definition(projects: ServedProjects, args: dict) -> dict:
    project, path = projects.for_path(args["path"], args.get("project"))
    with _committed(project) as searcher:
        r = searcher.definition_at(path, args["line"])
    return {
        "path": r.path,
        "start_line": r.start_line,
        "end_line": r.end_line,
        "symbol": r.symbol,
        "language": r.language,
        "code": r.text,
    }


def index_status(projects: ServedProjects, args: dict) -> dict:
    statuses = [p.status() for p in projects.chosen(args.get("project"))]
    loaded = projects.models.loaded() is not None
    return (statuses[0] if len(statuses) == 1 else {"projects": statuses}) | {
        "model_loaded": loaded
    }


TOOLS = {
    spec.name: spec
    for spec in [
        ToolSpec(
            "search",
            (
                "Search the project's code by meaning and by words, in an index kept up to date as "
                'files change. Use it before reading files: ask in plain words ("where do we retry '
                'failed uploads?") or with identifiers. Returns ranked definitions (function, '
                "class, method, section), each with path, start_line, end_line, symbol, language, "
                "score, match_line (the line that matched best) and code: the definition's lines "
                "as the file reads now, trimmed around match_line (code_lines says which). Modes: "
                "hybrid (default: meaning and words), semantic (meaning only), lexical (words and "
                "identifier parts, BM25); text (an exact string) and regex (a Python regular "
                "expression) list matching lines in file order instead, with total = all matching "
                "lines. A `note` says when the answer is not a ranked search of the index (e.g. "
                "while a first index is being built)."
            ),
            _schema(
                {
                    "query": {
                        "type": "string",
                        "minLength": 1,
                        "description": "What to look for: a "
                        "question or description in plain words, identifiers, or (text, regex "
                        "modes) the exact string or pattern of one line.",
                    },
                    "k": _K,
                    "mode": {
                        "type": "string",
                        "enum": list(MODES),
                        "default": "hybrid",
                        "description": "hybrid (default), semantic, lexical: ranked definitions. "
                        "text, regex: every matching line (case ignored unless the query has a "
                        "capital).",
                    },
                    "language": {
                        "type": "string",
                        "description": "Only these languages, comma-"
                        'separated, e.g. "python" or "python,go" (index_status lists '
                        "them).",
                    },
                    "path_glob": {
                        "type": "string",
                        "description": "Only files matching this "
                        '.gitignore-style pattern, e.g. "*.py", "src/", "tests/**".',
                    },
                    "project": _PROJECT,
                    "max_lines": _MAX_LINES,
                    "max_tokens": _MAX_TOKENS,
                },
                "query",
            ),
            search,
        ),
        ToolSpec(
            "find_related",
            (
                "Find code similar in meaning to the definition at a file and line: other "
                "implementations of the same idea, callers' helpers, duplicated logic. Uses the "
                "definition's vector from the index (nothing is re-embedded). Returns ranked "
                "results shaped like search's."
            ),
            _schema(
                {
                    "path": _PATH,
                    "line": _LINE,
                    "k": _K,
                    "project": _PROJECT,
                    "max_lines": _MAX_LINES,
                    "max_tokens": _MAX_TOKENS,
                },
                "path",
                "line",
            ),
            find_related,
        ),
        ToolSpec(
            "read_definition",
            (
                "Read the whole definition (function, class, method, section) that encloses a line "
                "of a file, as the file reads now: path, start_line, end_line, symbol, language "
                "and code. Use it to see all of a search result whose code was trimmed."
            ),
            _schema({"path": _PATH, "line": _LINE, "project": _PROJECT}, "path", "line"),
            read_definition,
        ),
        ToolSpec(
            "index_status",
            (
                "The state of the project's index: files, chunks, languages, model, when it was "
                "last indexed, whether indexing runs now (with progress), whether this server "
                "keeps it fresh (role writer) or only reads what another process writes (role "
                "reader), and whether the model is loaded."
            ),
            _schema({"project": _PROJECT}),
            index_status,
        ),
    ]
}
