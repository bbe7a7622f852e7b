"""The outline of a parsed file: definitions found in the syntax tree, named as search
shows them, with the comments above them; hostile nesting is chunked, not recursed into."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from chunk_checks import PYTHON, STDLIB, assert_sound, pieces, words
from deep_sources import deep_sources

from app.core.chunking import chunk_file

REPO = Path(__file__).resolve().parents[2]


def outline(path: str, source: str, limit: int = 256) -> list[tuple[str, int, int]]:
    return [
        (p.chunk.symbol, p.chunk.start_line, p.chunk.end_line) for p in pieces(path, source, limit)
    ]


# --- One realistic snippet per language -----------------------------------------------------


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


# --- Syntax errors ---------------------------------------------------------------------------


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


# --- Whole files ---------------------------------------------------------------------------


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
