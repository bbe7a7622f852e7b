"""Source files nested far deeper than any real code. Each once ended in a RecursionError
(on the indexer's reader thread, a segfault) or took minutes to chunk."""

from __future__ import annotations


def deep_sources(line_depth: int = 10_000) -> dict[str, str]:
    """File name -> source. ``line_depth`` is how deep the one-bracket-per-line files
    nest (they cost the most to chunk and to embed)."""
    n = line_depth
    return {
        "ifs.py": "".join(" " * i + f"if x{i}:\n" for i in range(400))
        + " " * 400
        + "def f():\n"
        + " " * 401
        + "return 1\n",
        "classes.py": "".join(" " * i + f"class C{i}:\n" for i in range(400))
        + " " * 400
        + "def f(self):\n"
        + " " * 401
        + "return 1\n",
        "ifdefs.c": "".join(f"#ifdef A{i}\n" for i in range(500))
        + "int f(void) { return 1; }\n"
        + "#endif\n" * 500,
        "namespaces.cpp": "".join(f"namespace n{i} {{\n" for i in range(500))
        + "int f() { return 1; }\n"
        + "}\n" * 500,
        "templates.cpp": "".join(f"template <class T{i}>\n" for i in range(1000)) + "void f() {}\n",
        "mods.rs": "".join(f"mod m{i} {{\n" for i in range(450))
        + "fn f() -> i32 { 1 }\n"
        + "}\n" * 450,
        "brackets.py": "x = " + "[" * 10000 + "]" * 10000 + "\n",
        "brackets.js": "const x = " + "[" * 10000 + "]" * 10000 + ";\n",
        "brackets.c": "int x = " + "(" * 10000 + "1" + ")" * 10000 + ";\n",
        "bracket_lines.py": "x = " + "[\n" * n + "]\n" * n,
        "objects.js": "const x = " + "{a:\n" * n + "1" + "}\n" * n + ";\n",
        "blocks.c": "int f(void) {\n" + "{\n" * n + "}\n" * n + "}\n",
    }
