"""The languages CodeLamp knows: file names to language names, tree-sitter grammars, and
what counts as a definition in each grammar (the tables the chunker walks by).
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tree_sitter import Language, Parser, Tree

_EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".cc": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".php": "php",
    ".sh": "bash",
    ".bash": "bash",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".toml": "toml",
    ".json": "json",
    ".jsonc": "json",
    ".ini": "ini",
    ".cfg": "ini",
    ".conf": "ini",
    ".sql": "sql",
    ".html": "html",
    ".htm": "html",
    ".xml": "xml",
    ".css": "css",
    ".scss": "scss",
    ".less": "less",
    ".vue": "vue",
    ".svelte": "svelte",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".lua": "lua",
    ".r": "r",
    ".dart": "dart",
    ".zig": "zig",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".clj": "clojure",
    ".pl": "perl",
    ".pm": "perl",
    ".ps1": "powershell",
    ".bat": "batch",
    ".zsh": "zsh",
    ".fish": "fish",
    ".proto": "protobuf",
    ".graphql": "graphql",
    ".tf": "terraform",
    ".cmake": "cmake",
    ".gradle": "gradle",
    ".dockerfile": "dockerfile",
}
_FILE_NAMES = {
    "makefile": "makefile",
    "gnumakefile": "makefile",
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby",
    "rakefile": "ruby",
    ".bashrc": "bash",
    ".bash_profile": "bash",
    ".profile": "bash",
}
_INTERPRETERS = {
    "python": "python",
    "bash": "bash",
    "sh": "bash",
    "node": "javascript",
    "ruby": "ruby",
    "php": "php",
    "zsh": "zsh",
}
_GRAMMAR_MODULES = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
    "php": ("tree_sitter_php", "language_php"),
    "bash": ("tree_sitter_bash", "language"),
}


def language_for(path: str) -> str:
    """The language name for ``path``, from its extension or file name.

    Unknown files are "text": whether a file is text at all is decided by its content, by
    whoever reads it.
    """
    name = PurePosixPath(path).name.lower()
    if name in _FILE_NAMES:
        return _FILE_NAMES[name]
    if name.startswith("dockerfile."):
        return "dockerfile"
    return _EXTENSIONS.get(PurePosixPath(name).suffix, "text")


def language_from_shebang(first_line: str) -> str | None:
    """Scripts without an extension still name their interpreter: "#!/usr/bin/env python3"."""
    words = first_line[2:].split()
    if words and PurePosixPath(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    if not words:
        return None
    return _INTERPRETERS.get(re.sub(r"[\d.]+$", "", PurePosixPath(words[0]).name))


@functools.cache
def _language(name: str) -> Language:
    """Grammars load on first use: importing all thirteen costs start-up time."""
    module, function = _GRAMMAR_MODULES[name]
    return Language(getattr(importlib.import_module(module), function)())


# Parsers are not thread-safe; the indexer chunks on more than one thread.
_thread = threading.local()


def parser_for(name: str) -> Parser:
    parsers = _thread.__dict__.setdefault("parsers", {})
    if name not in parsers:
        parsers[name] = Parser(_language(name))
    return parsers[name]


# Fed to the parser in slices: between slices the parser calls back into Python, which lets
# other threads (the GUI's above all) take the GIL. Parsing a 3,000-line file in one call
# holds it for ~20 ms, a 12,000-line one for ~75 ms; sliced, no thread waits over ~12 ms.
_PARSE_SLICE = 4096


def parse(name: str, data: bytes) -> Tree:
    """The syntax tree of ``data`` in language ``name``."""
    return parser_for(name).parse(lambda offset, _point: data[offset : offset + _PARSE_SLICE])


# --- What counts as a definition, per grammar --------------------------------------------


@dataclass(frozen=True)
class Grammar:
    defs: frozenset[str] = frozenset()  # one chunk each (split only when too big)
    scopes: frozenset[str] = frozenset()  # class-like: methods become their own chunks
    containers: frozenset[str] = frozenset()  # namespaces, #ifdef: looked through
    # Nodes that wrap one definition (decorators, export, template<>): the fields holding it,
    # "" for the last named child. The definition's chunk starts at the wrapper.
    wrappers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Looked through only when they hold a definition (`if sys.platform == ...: def f()`);
    # a conditional's own line (`if ...:`, `else:`) joins the definition right below it.
    conditionals: frozenset[str] = frozenset()
    blocks: frozenset[str] = frozenset()
    js: bool = False  # `const f = () => ...`, `a.b = function () {...}`, class fields


def _grammar(
    defs: str = "",
    scopes: str = "",
    containers: str = "",
    wrappers: dict[str, tuple[str, ...]] | None = None,
    conditionals: str = "",
    blocks: str = "",
    js: bool = False,
) -> Grammar:
    return Grammar(
        frozenset(defs.split()),
        frozenset(scopes.split()),
        frozenset(containers.split()),
        wrappers or {},
        frozenset(conditionals.split()),
        frozenset(blocks.split()),
        js,
    )


_JS_DEFS = "function_declaration generator_function_declaration method_definition"
_JS_WRAPPERS = {"export_statement": ("declaration", "value"), "expression_statement": ("",)}
_TS = _grammar(
    _JS_DEFS + " interface_declaration type_alias_declaration enum_declaration",
    "class_declaration abstract_class_declaration",
    "internal_module module",
    _JS_WRAPPERS | {"ambient_declaration": ("",)},
    js=True,
)
_C_DEFS = "function_definition struct_specifier union_specifier enum_specifier type_definition"
_C_CONTAINERS = "preproc_if preproc_ifdef preproc_else preproc_elif preproc_elifdef"
GRAMMARS = {
    "python": _grammar(
        "function_definition",
        "class_definition",
        wrappers={"decorated_definition": ("definition",)},
        conditionals="if_statement elif_clause else_clause try_statement "
        "except_clause finally_clause",
        blocks="block",
    ),
    "javascript": _grammar(_JS_DEFS, "class_declaration", wrappers=_JS_WRAPPERS, js=True),
    "typescript": _TS,
    "tsx": _TS,
    "go": _grammar("function_declaration method_declaration type_declaration"),
    "rust": _grammar(
        "function_item struct_item enum_item union_item macro_definition",
        "impl_item trait_item mod_item",
    ),
    "java": _grammar(
        "method_declaration constructor_declaration compact_constructor_declaration",
        "class_declaration interface_declaration enum_declaration "
        "record_declaration annotation_type_declaration",
        "enum_body_declarations",
    ),
    "c": _grammar(_C_DEFS, "", _C_CONTAINERS + " linkage_specification"),
    "cpp": _grammar(
        "function_definition enum_specifier type_definition",
        "class_specifier struct_specifier union_specifier",
        _C_CONTAINERS + " linkage_specification namespace_definition",
        {"template_declaration": ("",)},
    ),
    "csharp": _grammar(
        "method_declaration constructor_declaration destructor_declaration "
        "operator_declaration conversion_operator_declaration "
        "local_function_statement enum_declaration",
        "class_declaration struct_declaration interface_declaration "
        "record_declaration record_struct_declaration",
        "namespace_declaration",
    ),
    "ruby": _grammar("method singleton_method", "class module", "singleton_class"),
    "php": _grammar(
        "function_definition method_declaration",
        "class_declaration interface_declaration trait_declaration enum_declaration",
        "namespace_definition",
    ),
    "bash": _grammar("function_definition"),
}

# Without a body these are declarations (interface methods, `struct foo;`, `mod foo;`):
# a line among the others, not a chunk of their own.
NEEDS_BODY = frozenset(
    {
        "method_declaration",
        "function_declaration",
        "constructor_declaration",
        "struct_specifier",
        "union_specifier",
        "enum_specifier",
        "class_specifier",
        "mod_item",
    }
)
COMMENTS = frozenset({"comment", "line_comment", "block_comment", "attribute_item"})
# Tokens that only close what came before: they join the previous chunk, never start one.
CLOSERS = frozenset({"}", ")", "]", ";", ",", "end", "#endif", "};"})
JS_FUNCTIONS = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)
