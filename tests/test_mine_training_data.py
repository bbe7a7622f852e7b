"""The extraction rules of scripts/mine_training_data.py, on small inline sources (no network)."""

from __future__ import annotations

import textwrap

import mine_training_data as mine
import pytest


def _py(source: str) -> list[mine.Pair]:
    return mine.python_pairs(textwrap.dedent(source).encode(), "pkg", "pkg/mod.py")


def test_python_docstring_is_removed_and_first_paragraph_kept():
    (pair,) = _py('''
        class Cache:
            @staticmethod
            def evict(entries, limit):
                """Drop the oldest :class:`Entry` objects until ``limit`` remain.

                Longer explanation that is not part of the query.
                """

                entries.sort(key=lambda e: e.age)
                del entries[limit:]
                return entries
        ''')
    assert pair.query == "Drop the oldest Entry objects until limit remain."
    assert pair.symbol == "Cache.evict"
    assert pair.code == textwrap.dedent("""\
        @staticmethod
        def evict(entries, limit):
            entries.sort(key=lambda e: e.age)
            del entries[limit:]
            return entries""")
    assert '"""' not in pair.code and "Longer explanation" not in pair.code


def test_python_skips_short_docs_dunders_tests_stubs_and_short_code():
    pairs = _py('''
        def short(a):
            """Too short."""
            x = a + 1
            y = x * 2
            return y

        def __repr__(self):
            """Return the printable form of this object."""
            a = 1
            b = 2
            return f"{a}{b}"

        def test_thing():
            """Checks that the thing works as documented."""
            a = 1
            b = 2
            assert a < b

        def abstract(self):
            """Subclasses must implement this method properly."""
            raise NotImplementedError

        def tiny(a):
            """Return the argument plus one, always."""
            return a + 1
        ''')
    assert pairs == []


def test_python_one_line_docstring_on_def_line_is_skipped():
    assert _py('def f(a): "Return a value from the input."; return a\n') == []


def test_jsdoc_summary():
    comment = """/**
     * Parses a {@link Duration|duration} string like `1h30m` into
     * milliseconds, see {@link toMs}.
     *
     * Details that are not part of the summary.
     * @param {string} text - the input
     * @returns {number}
     */"""
    assert mine.jsdoc_summary(comment) == (
        "Parses a duration string like `1h30m` into milliseconds, see toMs."
    )
    assert mine.jsdoc_summary("/** @description Adds two numbers together quickly. */") == (
        "Adds two numbers together quickly."
    )
    assert mine.jsdoc_summary("/* Not a JSDoc comment at all here. */") == ""
    assert mine.jsdoc_summary("/** @license MIT, a file header comment */") == ""


def test_js_functions_methods_and_arrows():
    source = textwrap.dedent("""
        /**
         * Returns the sum of all numbers in the given list.
         * @param {number[]} xs
         */
        export function sum(xs) {
          let total = 0;
          for (const x of xs) total += x;
          return total;
        }

        /** Multiplies every element of the list by a factor. */
        const scale = (xs, k) => {
          const out = [];
          for (const x of xs) out.push(x * k);
          return out;
        };

        class Queue {
          /**
           * Removes and returns the item at the front of the queue.
           */
          shift() {
            const item = this.items[0];
            this.items = this.items.slice(1);
            return item;
          }
        }

        // A line comment is not documentation for the next function at all.
        function undocumented(a) {
          const b = a;
          return b;
        }
        """).encode()
    pairs = mine.js_pairs(source, "pkg", "src/a.js", "javascript")
    assert [(p.symbol, p.query) for p in pairs] == [
        ("sum", "Returns the sum of all numbers in the given list."),
        ("scale", "Multiplies every element of the list by a factor."),
        ("Queue.shift", "Removes and returns the item at the front of the queue."),
    ]
    assert pairs[0].code.startswith("export function sum(xs) {")
    assert "/**" not in pairs[0].code
    assert pairs[2].code.startswith("shift() {") and pairs[2].code.endswith("}")


def test_typescript_functions():
    source = b"""
/** Returns whether the value is a non-empty string. */
export const isText = (value: unknown): value is string => {
  if (typeof value !== "string") return false;
  return value.length > 0;
};
"""
    (pair,) = mine.js_pairs(source, "pkg", "src/a.ts", "typescript")
    assert pair.language == "typescript" and pair.symbol == "isText"


def _pair(query: str, code: str, path: str = "a.py", package: str = "pkg") -> mine.Pair:
    return mine.Pair(query, code, "python", package, path, "f", 1)


def test_dedup_drops_repeated_code_and_overused_descriptions():
    code = "def f():\n    a = 1\n    return a\n"
    pairs = [
        _pair("Return one from the function.", code, "b.py"),
        _pair("Return one from the function.", code.replace("    ", "  "), "a.py"),
    ]
    pairs += [_pair("Constructor of the class here.", f"def g{i}():\n  x\n  y\n") for i in range(4)]
    pairs += [_pair("Same words used twice here.", f"def h{i}():\n  x\n  y\n") for i in range(2)]
    kept, dropped = mine.deduplicate(pairs, max_repeats=3)
    assert dropped == {"duplicate_code": 1, "repeated_description": 4}
    assert [p.path for p in kept if p.query.startswith("Return")] == ["a.py"]  # sorted first
    assert sum(p.query.startswith("Same") for p in kept) == 2


def test_cap_takes_whole_files():
    pairs = [
        _pair(f"Query number {i} for the test.", f"c{i}\n\n", f"f{i % 3}.py") for i in range(9)
    ]
    kept = mine.cap_per_package(pairs, cap=4)
    assert len(kept) == 6  # two whole files of three: the cap is reached after the second
    assert len({mine.group_of(p) for p in kept}) == 2


def test_reserved_packages_are_refused():
    reserved = mine.read_reserved(
        "# PyPI\nrequests\npython-dateutil\n# npm\nlodash\n",
        "npm ramda\ngo github.com/spf13/cobra\n",
    )
    ok = [mine.Package("pypi", "attrs", "1.0"), mine.Package("npm", "zod", "3.0.0")]
    mine.check_packages(ok, reserved)
    for name in ("Requests", "python_dateutil", "lodash", "ramda"):
        with pytest.raises(ValueError, match="reserved"):
            mine.check_packages(ok + [mine.Package("pypi", name, "1.0")], reserved)
    with pytest.raises(ValueError, match="standard-library"):
        mine.check_packages([mine.Package("pypi", "typing_extensions", "4.0")], reserved)


def test_the_committed_list_passes_the_check():
    packages = mine.read_package_list(mine.PACKAGE_LIST.read_text())
    reserved = mine.read_reserved(
        mine.RESERVED.read_text() if mine.RESERVED.is_file() else "",
        mine.FUTURE_EVAL.read_text(),
    )
    mine.check_packages(packages, reserved)


def test_paths_and_generated_files():
    assert mine.skip_path("pkg/tests/test_x.py")
    assert mine.skip_path("pkg/_vendor/six.py")
    assert mine.skip_path("dist/index.min.js")
    assert mine.skip_path("src/a.test.ts")
    assert mine.skip_path("types/index.d.ts")
    assert mine.skip_path("pkg/yaml/load.py", frozenset({"yaml"}))
    assert not mine.skip_path("pkg/core/graph.py")
    assert mine.looks_generated("// Code generated by protoc. DO NOT EDIT.\nvar x = 1;\n")
    assert mine.looks_generated("var a=" + "1+" * 800 + "1;\n")
    assert not mine.looks_generated("def f():\n    return 1\n")
    assert mine.npm_sources(["src/a.ts", "lib/a.js", "src/b.d.ts"]) == {"src/a.ts": "typescript"}
    assert mine.npm_sources(["lib/a.js", "lib/a.cjs", "lib/b.mjs"]) == {
        "lib/a.js": "javascript",
        "lib/b.mjs": "javascript",
    }


def test_licences():
    assert mine.spdx_permissive("MIT")
    assert mine.spdx_permissive("(MIT OR GPL-3.0)")
    assert not mine.spdx_permissive("MIT AND GPL-3.0")
    assert not mine.spdx_permissive("LGPL-2.1")
    meta = "Metadata-Version: 2.1\nName: x\nClassifier: License :: OSI Approved :: MIT License\n"
    assert mine.python_licence(meta, []) == ("MIT", "Classifier")
    gpl = "Name: x\nClassifier: License :: OSI Approved :: GNU General Public License (GPL)\n"
    assert mine.python_licence(gpl, [])[0] is None
    assert (
        mine.python_licence("Name: x\n", ["Permission is hereby granted, free of charge"])[0]
        == "MIT"
    )
    assert mine.npm_licence({"license": "ISC"}) == ("ISC", "package.json")
    assert mine.npm_licence({"license": "SEE LICENSE IN LICENSE"})[0] is None
