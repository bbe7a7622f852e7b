"""Chunking: definitions become search results, and no piece is ever too long to embed.

Most tests count tokens as whitespace-separated words plus two special tokens: additive,
like WordPiece, so expected boundaries are exact. One test uses the real model's tokenizer.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import threading
from pathlib import Path
from textwrap import dedent

import pytest
from deep_sources import deep_sources

from app.core.chunking import Piece, chunk_file
from app.core.languages import language_for

STDLIB = Path(sysconfig.get_paths()["stdlib"])
REPO = Path(__file__).resolve().parents[2]


def words(text: str) -> int:
    return len(text.split()) + 2


def pieces(path: str, source: str, limit: int = 256, count=words) -> list[Piece]:
    return chunk_file(path, dedent(source), limit, count)


def outline(path: str, source: str, limit: int = 256) -> list[tuple[str, int, int]]:
    return [
        (p.chunk.symbol, p.chunk.start_line, p.chunk.end_line) for p in pieces(path, source, limit)
    ]


def assert_sound(path: str, text: str, result: list[Piece], limit: int, count=words) -> None:
    """Every piece fits and shows its own lines; every non-blank line is in some piece."""
    lines = text.split("\n")
    covered: set[int] = set()
    for piece in result:
        chunk = piece.chunk
        assert count(piece.embed_text) <= limit, chunk
        assert chunk.path == path and chunk.language
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines)
        whole = "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        if chunk.text != whole:  # only a line too long for the model is cut
            assert chunk.start_line == chunk.end_line and chunk.text in whole, chunk
        assert piece.embed_text.endswith(chunk.text)
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    missing = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]
    assert not missing, f"{path}: lines {missing[:10]} are in no chunk"


# --- One realistic snippet per language -----------------------------------------------------

PYTHON = """\
    import os
    import sys

    TIMEOUT = 30


    # Retry helper.
    @retry(times=3)
    @log_calls
    def upload(path, data):
        return client.put(path, data)


    class LRUCache(Base):
        \"\"\"A bounded cache.\"\"\"

        capacity = 128

        def get(self, key):
            return self.data.get(key)

        @staticmethod
        def build(n):
            return LRUCache(n)

        class Stats:
            def hit_rate(self):
                return 0.5

        hits = 0


    if __name__ == "__main__":
        upload("a", b"")
    """


def test_python_definitions_decorators_nested_classes_and_merged_statements():
    assert outline("pkg/cache.py", PYTHON) == [
        ("", 1, 4),  # imports and the constant, merged
        ("upload", 7, 11),  # from its leading comment, through both decorators
        ("LRUCache", 14, 17),  # class line, docstring, class attribute
        ("LRUCache.get", 19, 20),
        ("LRUCache.build", 22, 24),
        ("LRUCache.Stats.hit_rate", 26, 28),  # a bare class line goes with its first method
        ("LRUCache", 30, 30),  # class lines after the methods
        ("", 33, 34),
    ]


def test_section_comments_introduce_the_next_definition_not_a_chunk_of_their_own():
    source = """\
        def first():
            return 1

        #
        # Helpers for the wire format
        #

        def encode(value):
            return value


        # Not followed by a definition.

        x = 1
        """
    assert outline("wire.py", source) == [
        ("first", 1, 2),
        ("encode", 4, 9),  # the comment block, one blank row, the function
        ("", 12, 14),
    ]


def test_definitions_inside_platform_conditionals_keep_their_names():
    source = """\
        import sys

        if sys.platform == "win32":
            def open_pipe(name):
                return win_open(name)
        else:
            def open_pipe(name):
                return posix_open(name)

        class Popen:
            if sys.platform == "win32":
                def _execute_child(self, args):
                    return spawn(args)

        try:
            from _speedups import scan
        except ImportError:
            scan = None
        """
    assert outline("proc.py", source) == [
        ("", 1, 1),
        ("open_pipe", 3, 5),  # the condition joins the definition right below it
        ("open_pipe", 6, 8),
        ("Popen._execute_child", 10, 13),
        ("", 15, 18),  # no definitions inside: one ordinary statement
    ]


def test_class_lines_after_methods_carry_the_class_signature():
    result = pieces("pkg/cache.py", PYTHON)
    tail = next(p for p in result if p.chunk.start_line == 30)
    assert tail.embed_text == "pkg/cache.py LRUCache\nclass LRUCache(Base):\n    hits = 0"
    head = next(p for p in result if p.chunk.start_line == 14)
    assert head.embed_text == f"pkg/cache.py LRUCache\n{head.chunk.text}"  # its own signature


def test_javascript_exports_classes_fields_and_assigned_functions():
    source = """\
        import { client } from "./client.js";

        // Upload one file.
        export async function upload(path, data) {
          return client.put(path, data);
        }

        export default class Uploader extends Base {
          retries = 3;

          constructor(opts) {
            super(opts);
          }

          onError = (err) => {
            console.error(err);
          };
        }

        const retry = async (fn, times) => {
          return fn();
        };

        module.exports.helper = function () {
          return 1;
        };

        export default () => 42;
        """
    assert outline("src/upload.mjs", source) == [
        ("", 1, 1),
        ("upload", 3, 6),
        ("Uploader", 8, 9),
        ("Uploader.constructor", 11, 13),
        ("Uploader.onError", 15, 18),  # the class's closing brace joins its last member
        ("retry", 20, 22),
        ("module.exports.helper", 24, 26),
        ("default", 28, 28),
    ]


def test_typescript_interfaces_types_enums_and_generic_classes():
    source = """\
        export interface User {
          id: number;
          name: string;
        }

        type Id = string | number;

        enum Color {
          Red,
          Green,
        }

        export class Repo<T> {
          private items: T[] = [];

          find(id: Id): T | undefined {
            return this.items[0];
          }
        }

        export const byId = (id: Id): User => {
          return lookup(id);
        };

        declare module "legacy" {
          export function old(): void;
        }
        """
    assert outline("src/repo.ts", source) == [
        ("User", 1, 4),
        ("Id", 6, 6),
        ("Color", 8, 11),
        ("Repo", 13, 14),
        ("Repo.find", 16, 19),
        ("byId", 21, 23),
        ("", 25, 27),  # an ambient module of declarations only
    ]


def test_tsx_components():
    source = """\
        import React from "react";

        export const Button = ({ label }: Props) => {
          return <button className="primary">{label}</button>;
        };

        export function App() {
          return <Button label="hi" />;
        }
        """
    assert outline("ui/App.tsx", source) == [("", 1, 1), ("Button", 3, 5), ("App", 7, 9)]
    assert {p.chunk.language for p in pieces("ui/App.tsx", source)} == {"tsx"}


def test_go_functions_methods_with_receiver_and_types():
    source = """\
        package store

        import "errors"

        // Store keeps blobs.
        type Store struct {
        \troot string
        }

        // Open opens a store.
        func Open(root string) (*Store, error) {
        \treturn &Store{root: root}, nil
        }

        func (s *Store) Put(key string, data []byte) error {
        \treturn errors.New("todo")
        }

        func (c Cache[K]) Get(key K) {}
        """
    assert outline("store/store.go", source) == [
        ("", 1, 3),
        ("Store", 5, 8),
        ("Open", 10, 13),
        ("Store.Put", 15, 17),
        ("Cache.Get", 19, 19),
    ]


def test_rust_items_impl_methods_traits_and_attributes():
    source = """\
        use std::fmt;

        /// A blob store.
        #[derive(Debug)]
        pub struct Store {
            root: String,
        }

        impl Store {
            pub fn open(root: &str) -> Self {
                Store { root: root.to_string() }
            }
        }

        impl fmt::Display for Store {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{}", self.root)
            }
        }

        pub trait Backend {
            fn put(&self, key: &str);
        }

        pub enum Mode {
            Read,
            Write,
        }

        #[cfg(test)]
        mod tests {
            #[test]
            fn opens() {}
        }
        """
    assert outline("src/store.rs", source) == [
        ("", 1, 1),
        ("Store", 3, 7),  # doc comment and attribute belong to the struct
        ("Store.open", 9, 13),  # an impl line with nothing else goes with its first method
        ("Store.fmt", 15, 19),
        ("Backend", 21, 23),  # no default methods: one chunk
        ("Mode", 25, 28),
        ("tests.opens", 30, 34),
    ]


def test_java_classes_constructors_methods_and_nested_types():
    source = """\
        package com.example;

        import java.util.Map;

        /** An LRU cache. */
        public class LruCache<K, V> {
            private final int capacity;

            public LruCache(int capacity) {
                this.capacity = capacity;
            }

            @Override
            public V get(K key) {
                return null;
            }

            enum Policy { LRU, LFU }
        }

        interface Cache {
            Object get(Object key);
        }
        """
    assert outline("src/LruCache.java", source) == [
        ("", 1, 3),
        ("LruCache", 5, 7),
        ("LruCache.LruCache", 9, 11),
        ("LruCache.get", 13, 16),  # annotations are part of the method
        ("LruCache.Policy", 18, 19),
        ("Cache", 21, 23),  # only declarations: one chunk
    ]


def test_c_functions_structs_and_typedefs():
    source = """\
        #include <stdio.h>

        #define MAX 10

        /* A point in 2D. */
        struct point {
            int x, y;
        };

        typedef struct {
            int len;
        } buffer;

        int add(int a, int b);

        static int *twice(int *a) {
            return a;
        }

        #ifdef DEBUG
        int main(void) {
            printf("%d\\n", MAX);
            return 0;
        }
        #endif
        """
    assert outline("src/point.c", source) == [
        ("", 1, 3),
        ("point", 5, 8),
        ("buffer", 10, 12),
        ("", 14, 14),  # a declaration is not a definition
        ("twice", 16, 18),
        ("", 20, 20),
        ("main", 21, 25),
    ]


def test_cpp_namespaces_classes_and_qualified_methods():
    source = """\
        #include <string>

        namespace geo {

        class Shape {
         public:
          virtual double area() const = 0;
        };

        class Circle : public Shape {
         public:
          explicit Circle(double r) : r_(r) {}
          double area() const override {
            return 3.14 * r_ * r_;
          }

         private:
          double r_;
        };

        double Circle::scale(double x) { return x * 2; }

        template <typename T>
        T twice(T x) {
          return x + x;
        }

        }  // namespace geo
        """
    assert outline("src/geo.cpp", source) == [
        ("", 1, 3),
        ("Shape", 5, 8),
        ("Circle", 10, 11),
        ("Circle.Circle", 12, 12),
        ("Circle.area", 13, 15),
        ("Circle", 17, 19),
        ("Circle.scale", 21, 21),
        ("twice", 23, 28),
    ]


def test_csharp_namespaces_classes_and_members():
    source = """\
        using System;

        namespace Shop.Billing
        {
            /// <summary>Computes invoices.</summary>
            public class InvoiceService
            {
                private readonly decimal _tax;

                public InvoiceService(decimal tax)
                {
                    _tax = tax;
                }

                public decimal Total(decimal net) => net * (1 + _tax);

                decimal Discount(decimal net);
            }

            public enum Currency { Eur, Usd }
        }
        """
    assert outline("Billing/InvoiceService.cs", source) == [
        ("", 1, 4),
        ("InvoiceService", 5, 8),
        ("InvoiceService.InvoiceService", 10, 13),
        ("InvoiceService.Total", 15, 15),
        ("InvoiceService", 17, 18),
        ("Currency", 20, 21),
    ]


def test_ruby_classes_modules_and_singleton_methods():
    source = """\
        require "json"

        # Caches values.
        class Cache
          attr_reader :size

          def initialize(size)
            @size = size
          end

          def self.build
            new(10)
          end
        end

        module Util
          def self.slug(s)
            s.downcase
          end
        end
        """
    assert outline("lib/cache.rb", source) == [
        ("", 1, 1),
        ("Cache", 3, 5),
        ("Cache.initialize", 7, 9),
        ("Cache.build", 11, 14),
        ("Util.slug", 16, 20),
    ]


def test_php_namespaces_classes_and_functions():
    source = """\
        <?php

        namespace App\\Models;

        /** A user. */
        class User extends Model
        {
            protected $table = 'users';

            public function posts()
            {
                return $this->hasMany(Post::class);
            }
        }

        function helper($x)
        {
            return $x;
        }
        """
    assert outline("app/Models/User.php", source) == [
        ("", 1, 3),
        ("User", 5, 8),
        ("User.posts", 10, 14),
        ("helper", 16, 19),
    ]


BASH = """\
    #!/usr/bin/env bash
    set -euo pipefail

    # Print a greeting.
    greet() {
      echo "hello $1"
    }

    function cleanup {
      rm -rf "$TMP"
    }

    greet world
    """


def test_bash_functions():
    expected = [("", 1, 2), ("greet", 4, 7), ("cleanup", 9, 11), ("", 13, 13)]
    assert outline("deploy.sh", BASH) == expected


def test_a_script_without_extension_is_parsed_by_its_shebang():
    result = pieces("scripts/deploy", BASH)
    assert [p.chunk.symbol for p in result] == ["", "greet", "cleanup", ""]
    assert {p.chunk.language for p in result} == {"bash"}


# --- Embedding text ----------------------------------------------------------------------


def test_a_piece_that_fits_is_embedded_as_its_chunk():
    for piece in pieces("pkg/cache.py", PYTHON):
        if piece.chunk.symbol != "LRUCache" or piece.chunk.start_line == 14:
            header = f"pkg/cache.py {piece.chunk.symbol}".rstrip()  # merged code: the path
            assert piece.embed_text == f"{header}\n{piece.chunk.text}"


# --- Splitting what does not fit -----------------------------------------------------------

LONG_FUNCTION = "\n".join(
    [
        "@traced",
        "def upload_all(self, files, retries=3):",
        '    """Upload every file, retrying the ones that fail."""',
        "    done = []",
        *[
            f"    step_{i} = prepare(files, attempt={i}, backoff=0.{i}, log=True)"
            for i in range(30)
        ],
        "    for f in files:",
        *[
            f"        send(f, part={i}, timeout=30, checksum=True, retry=retries)"
            for i in range(30)
        ],
        "    return done",
        "",
    ]
)


def test_a_long_function_is_split_between_statements_and_every_part_names_it():
    limit = 80
    result = chunk_file("up.py", LONG_FUNCTION, limit, words)
    assert_sound("up.py", LONG_FUNCTION, result, limit)
    assert len(result) >= 5
    assert {p.chunk.symbol for p in result} == {"upload_all"}
    assert result[0].chunk.start_line == 1  # the decorator starts the first part
    assert result[-1].chunk.end_line == 66
    for before, after in zip(result, result[1:], strict=False):
        assert after.chunk.start_line == before.chunk.end_line + 1  # contiguous, no overlap
    signature = "def upload_all(self, files, retries=3):"
    for piece in result[1:]:
        assert signature not in piece.chunk.text
        assert piece.embed_text == f"up.py upload_all\n{signature}\n{piece.chunk.text}"
    # The loop alone is too big: it is split between its own statements.
    assert any(p.chunk.start_line > 35 and p.chunk.text.startswith("        send(") for p in result)


def test_a_huge_single_line_is_cut_by_characters():
    line = "DATA = [" + ", ".join(str(i) for i in range(3000)) + "]"
    source = f"import os\n{line}\nprint(DATA)\n"
    limit = 100
    result = chunk_file("data.py", source, limit, words)
    assert_sound("data.py", source, result, limit)
    cut = [p for p in result if p.chunk.start_line == p.chunk.end_line == 2]
    assert len(cut) > 20
    assert "".join(p.chunk.text for p in cut) == line


def test_a_minified_file_is_cut_without_losing_a_character():
    line = "".join(f"function f{i}(a){{return a*{i}}}" for i in range(2000))
    limit = 64
    result = chunk_file("dist/app.min.js", line, limit, lambda t: len(t) // 4 + 2)
    assert len(result) > 10
    assert "".join(p.chunk.text for p in result) == line
    assert all(len(p.embed_text) // 4 + 2 <= limit for p in result)


def test_pieces_fit_even_when_the_packing_estimate_is_wrong():
    # Not additive: joined lines cost more than their parts, so packed parts must be
    # checked and re-split.
    def lumpy(text: str) -> int:
        return len(text.split()) + 2 * text.count("\n") + 2

    limit = 60
    result = chunk_file("up.py", LONG_FUNCTION, limit, lumpy)
    assert_sound("up.py", LONG_FUNCTION, result, limit, lumpy)


def test_an_absurdly_long_path_leaves_room_for_the_code():
    def chars(text: str) -> int:
        return len(text) // 4 + 2

    path = "/".join(f"directory_number_{i}" for i in range(100)) + "/upload.py"
    limit = 128
    result = chunk_file(path, LONG_FUNCTION, limit, chars)
    assert_sound(path, LONG_FUNCTION, result, limit, chars)
    assert all(p.embed_text.startswith("upload.py upload_all\n") for p in result)


def test_a_window_too_small_for_any_text_is_a_caller_error():
    with pytest.raises(ValueError, match="max_tokens=10"):
        chunk_file("a.py", "x = 1\n", 10, words)


def test_the_tokenizer_counts_each_statement_once_not_each_line():
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return words(text)

    source = (STDLIB / "json" / "decoder.py").read_text(encoding="utf-8")  # 356 lines
    result = chunk_file("json/decoder.py", source, 256, counting)
    assert len(calls) == len(set(calls)), "no text is counted twice"
    assert len(calls) <= 5 * len(result) < 100


# --- Line windows ------------------------------------------------------------------------


def test_markdown_windows_follow_headings():
    source = dedent("""\
        # CodeLamp

        Offline code search.

        ## Install

        ```bash
        # not a heading: a shell comment
        pip install codelamp
        ```

        ## Usage
        Run `codelamp index .` first.
        """)
    result = chunk_file("README.md", source, 256, words)
    assert [(p.chunk.symbol, p.chunk.start_line, p.chunk.end_line) for p in result] == [
        ("CodeLamp", 1, 3),
        ("Install", 5, 10),
        ("Usage", 12, 13),
    ]
    assert {p.chunk.language for p in result} == {"markdown"}
    assert result[1].embed_text.startswith("README.md Install\n## Install")


def test_a_long_markdown_section_is_cut_into_windows_of_at_most_40_lines():
    source = "## Changelog\n" + "\n".join(f"- fixed bug {i}" for i in range(100)) + "\n"
    result = chunk_file("CHANGES.md", source, 1000, words)
    assert_sound("CHANGES.md", source, result, 1000)
    assert [p.chunk.end_line - p.chunk.start_line + 1 for p in result] == [40, 40, 21]
    assert {p.chunk.symbol for p in result} == {"Changelog"}


def test_yaml_windows_break_at_blank_lines_then_top_level_keys():
    sections = [
        "\n".join(f"{name}_{i}:\n  image: app:{i}\n  restart: always" for i in range(5))
        for name in ("web", "db", "cache")
    ]
    source = "\n\n".join(sections) + "\n"
    result = chunk_file("deploy/compose.yaml", source, 40, words)
    assert_sound("deploy/compose.yaml", source, result, 40)
    assert [(p.chunk.start_line, p.chunk.end_line) for p in result] == [
        (1, 15),
        (17, 31),
        (33, 47),
    ]
    flat = "\n".join(f"key_{i}:\n  value: {i}" for i in range(60)) + "\n"
    windows = chunk_file("flat.yml", flat, 1000, words)
    assert_sound("flat.yml", flat, windows, 1000)
    assert all(p.chunk.end_line - p.chunk.start_line < 40 for p in windows)
    assert all(p.chunk.text.startswith("key_") for p in windows)  # never mid-entry
    assert {p.chunk.language for p in windows} == {"yaml"}


# --- Robustness ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n", "\r\n"])
def test_empty_and_whitespace_files_have_no_chunks(text):
    assert chunk_file("a.py", text, 256, words) == []
    assert chunk_file("a.md", text, 256, words) == []


def test_syntax_errors_still_give_chunks_for_what_parses():
    source = dedent("""\
        def broken(:
            return 1

        class Half(
            def method(self): pass

        def fine(x):
            return x * 2
        """)
    result = chunk_file("bad.py", source, 256, words)
    assert_sound("bad.py", source, result, 256)
    assert ("fine", 7, 8) in [
        (p.chunk.symbol, p.chunk.start_line, p.chunk.end_line) for p in result
    ]


@pytest.mark.parametrize("path", ["a.py", "a.js", "a.go", "a.rs", "a.c", "a.rb", "a.php"])
def test_garbage_never_raises(path):
    source = "}{ ))) def class fn ;; <?php \x00 \ufffd" * 20 + "\n{{{{\n" * 50
    assert_sound(path, source, chunk_file(path, source, 64, words), 64)


def test_line_numbers_count_lines_not_bytes_or_unicode_separators():
    source = (
        's = "日本語のテキスト 🚀"  # ü\n'
        't = "form\x0cfeed and line\u2028separator"\n'
        "\n"
        "def after():\r\n"
        "    return 'naïve'\r\n"
    )
    result = chunk_file("u.py", source, 256, words)
    assert [(p.chunk.symbol, p.chunk.start_line, p.chunk.end_line) for p in result] == [
        ("", 1, 2),
        ("after", 4, 5),
    ]
    assert result[1].chunk.text == "def after():\r\n    return 'naïve'\r"


def test_chunking_on_many_threads_gives_the_same_result():
    sources = [
        (p.name, p.read_text(encoding="utf-8"))
        for p in (STDLIB / "json" / "decoder.py", STDLIB / "textwrap.py")
    ]
    expected = [chunk_file(name, text, 128, words) for name, text in sources]
    results: list[list[list[Piece]]] = []

    def work() -> None:
        results.append([chunk_file(name, text, 128, words) for name, text in sources * 5][:2])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 6


# --- Hostile nesting -------------------------------------------------------------------------

DEEP = deep_sources()


@pytest.mark.parametrize("path", DEEP)
def test_deep_nesting_is_chunked_not_recursed_into(path):
    assert_sound(path, DEEP[path], chunk_file(path, DEEP[path], 256, words), 256)


@pytest.mark.parametrize(
    ("path", "source", "symbol"),
    [
        (
            "mods.rs",
            "".join(f"mod m{i} {{\n" for i in range(30)) + "fn f() -> i32 { 1 }\n" + "}\n" * 30,
            ".".join(f"m{i}" for i in range(30)) + ".f",
        ),
        (
            "ifs.py",
            "".join(" " * i + f"if x{i}:\n" for i in range(30))
            + " " * 30
            + "def f():\n"
            + " " * 31
            + "return 1\n",
            "f",
        ),
    ],
)
def test_definitions_nested_thirty_deep_keep_their_names(path, source, symbol):
    assert symbol in {p.chunk.symbol for p in chunk_file(path, source, 256, words)}


def test_deep_nesting_cannot_crash_a_worker_thread(tmp_path):
    """The indexer chunks on a thread, where running out of stack is a segfault, not an
    exception: run there, in a process of its own that pytest survives."""
    for name, source in DEEP.items():
        (tmp_path / name).write_text(source)
    script = dedent("""\
        import sys, threading
        from pathlib import Path
        from app.core.chunking import chunk_file
        errors = []
        def work():
            try:
                for path in sorted(Path(sys.argv[1]).iterdir()):
                    chunk_file(path.name, path.read_text(), 256, lambda t: len(t.split()) + 2)
            except BaseException as exc:
                errors.append(repr(exc))
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        sys.exit(f"failed: {errors}" if errors else 0)
        """)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_deep_nesting_is_counted_in_time_linear_in_the_file():
    """Splitting peels one level off the nesting at a time; recounting all that is left at
    every level was quadratic (a 200 kB file of nested lists took 48 s)."""
    text = DEEP["bracket_lines.py"]
    counted = 0

    def counting(piece: str) -> int:
        nonlocal counted
        counted += len(piece)
        return words(piece)

    assert_sound("deep.py", text, chunk_file("deep.py", text, 256, counting), 256)
    assert counted < 20 * len(text)


# --- Whole files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["json/decoder.py", "argparse.py", "textwrap.py", "ast.py"])
@pytest.mark.parametrize("limit", [64, 256])
def test_stdlib_files_are_fully_covered_by_pieces_that_fit(name, limit):
    text = (STDLIB / name).read_text(encoding="utf-8")
    result = chunk_file(name, text, limit, words)
    assert_sound(name, text, result, limit)


def test_json_decoder_definitions():
    text = (STDLIB / "json" / "decoder.py").read_text(encoding="utf-8")
    symbols = [p.chunk.symbol for p in chunk_file("json/decoder.py", text, 256, words)]
    for expected in (
        "JSONDecodeError",
        "JSONDecodeError.__init__",
        "py_scanstring",
        "JSONObject",
        "JSONDecoder",
        "JSONDecoder.decode",
        "JSONDecoder.raw_decode",
    ):
        assert expected in symbols


def generated_js(n: int) -> str:
    return "\n".join(
        f"// Handler {i}.\nexport class Handler{i} {{\n"
        + "".join(f"  step{j}(x) {{\n    return x + {j} * {i};\n  }}\n\n" for j in range(i % 4))
        + f"}}\n\nconst helper{i} = (a, b) => a * b + {i};\n"
        for i in range(n)
    )


def generated_go(n: int) -> str:
    return "package gen\n\n" + "\n".join(
        f"// T{i} is generated.\ntype T{i} struct {{\n\tv int\n}}\n\n"
        f"func (t *T{i}) Get() int {{\n"
        + "".join(f"\tt.v += {j}\n" for j in range(i * 3))
        + "\treturn t.v\n}\n"
        for i in range(n)
    )


@pytest.mark.parametrize(("path", "make"), [("gen.js", generated_js), ("gen.go", generated_go)])
def test_generated_files_are_covered(path, make):
    text = make(60)
    result = chunk_file(path, text, 96, words)
    assert_sound(path, text, result, 96)
    symbols = {p.chunk.symbol for p in result}
    assert ("Handler3.step2" in symbols) if path.endswith(".js") else ("T59.Get" in symbols)


# --- Languages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a.py", "python"),
        ("a.jsx", "javascript"),
        ("a.mjs", "javascript"),
        ("a.cjs", "javascript"),
        ("a.ts", "typescript"),
        ("a.tsx", "tsx"),
        ("a.go", "go"),
        ("a.rs", "rust"),
        ("A.java", "java"),
        ("a.h", "c"),
        ("a.hpp", "cpp"),
        ("a.cc", "cpp"),
        ("a.cs", "csharp"),
        ("a.rb", "ruby"),
        ("a.php", "php"),
        ("a.sh", "bash"),
        ("docs/README.md", "markdown"),
        ("a.yml", "yaml"),
        ("pyproject.toml", "toml"),
        ("Makefile", "makefile"),
        ("sub/Dockerfile", "dockerfile"),
        ("notes", "text"),
        ("weird.xyz", "text"),
        ("A.PY", "python"),
    ],
)
def test_language_for(path, language):
    assert language_for(path) == language


# --- The real tokenizer ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "some_symbols"),
    [
        ("argparse.py", {"ArgumentParser.parse_known_args", "_get_action_name"}),
        ("typing.py", {"TypeVar", "_BaseGenericAlias.__getattr__"}),
    ],
)
def test_pieces_fit_the_real_model(embedder, name, some_symbols):
    text = (STDLIB / name).read_text(encoding="utf-8")
    result = chunk_file(name, text, embedder.max_tokens, embedder.count_tokens)
    assert embedder.max_tokens == 256
    assert_sound(name, text, result, embedder.max_tokens, embedder.count_tokens)
    assert some_symbols <= {p.chunk.symbol for p in result}
