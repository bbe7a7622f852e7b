"""The targets of scripts/eval_quality.py's tasks, on small inline sources (no network, no
model): what becomes a query, what is blanked in the indexed source, and what is left out."""

from __future__ import annotations

import argparse
import textwrap
from types import SimpleNamespace

import eval_quality as ev

JS = textwrap.dedent("""\
    import _curry2 from "./internal/_curry2.js";

    /**
     * Returns the larger of its two arguments, as compared
     * by `>`.
     *
     * @param {*} a
     * @example
     *      R.max(1, 2); //=> 2
     */
    var max = /*#__PURE__*/_curry2(function max(a, b) {
      var larger = a > b ? a : b;
      return larger;
    });

    /** Too short. */
    const min = (a, b) => {
      return a < b ? a : b;
    };

    /** Adds one to the number given. */
    const inc = (a) => a + 1;

    /** Checks that the thing works as it should. */
    function testThing() {
      check();
      return true;
    }

    export class Box {
      /** Builds a box around the value given. */
      constructor(value) {
        this.value = value;
        this.open = false;
      }

      /** Opens the box and returns what is inside. */
      unwrap() {
        this.open = true;
        return this.value;
      }
    }
    export default max;
    """)


def test_js_targets_are_documented_functions_with_their_summary():
    indexed, targets = ev.js_targets("pkg/max.js", JS)
    found = {t.query: t.answers for t in targets}
    assert found == {
        "Returns the larger of its two arguments, as compared by `>`.": (
            ev.Span("pkg/max.js", 11, 14),
        ),
        "Opens the box and returns what is inside.": (ev.Span("pkg/max.js", 38, 41),),
    }
    # Left out: a 2-word summary, a one-line arrow, a test, a constructor.


def test_js_jsdoc_is_blanked_keeping_line_numbers():
    indexed, _ = ev.js_targets("pkg/max.js", JS)
    lines, original = indexed.split("\n"), JS.split("\n")
    assert len(lines) == len(original)
    assert "/**" not in indexed and "larger of" not in indexed and "@example" not in indexed
    assert lines[2:10] == [""] * 8
    assert lines[10] == "var max = /*#__PURE__*/_curry2(function max(a, b) {"  # other comments stay
    blanked = {3, 4, 5, 6, 7, 8, 9, 10, 16, 21, 24, 31, 37}
    assert all(lines[n - 1] == "" for n in blanked)
    assert all(lines[n - 1] == original[n - 1] for n in range(1, len(lines)) if n not in blanked)


def test_typescript_is_parsed_as_typescript():
    source = textwrap.dedent("""\
        export class Store<T> {
          /**
           * Replaces the state with the result of the recipe.
           */
          update(recipe: (draft: T) => T): void {
            const next: T = recipe(this.state)
            this.state = next
          }
        }
        """)
    indexed, (target,) = ev.js_targets("pkg/store.ts", source)
    assert target.query == "Replaces the state with the result of the recipe."
    assert target.answers == (ev.Span("pkg/store.ts", 5, 8),)
    assert indexed.split("\n")[1:4] == ["", "", ""]


GO = textwrap.dedent("""\
    // Package flags parses flags.
    package flags

    // ErrMissing is returned when a flag has no value.
    var ErrMissing = errors.New("missing")

    // Parse reads the arguments given and fills the flag set.
    // It stops at the first non-flag.
    //
    // More detail that is not part of the query.
    //
    //go:noinline
    func Parse(args []string) error {
    \tfor _, a := range args {
    \t\t_ = a
    \t}
    \treturn nil
    }

    // Reset clears.
    func (s *Set) Reset() {
    \ts.flags = nil
    \ts.parsed = false
    }

    // Name returns the flag's name as given.
    func (f *Flag) Name() string { return f.name }

    // Loose comment, not a doc comment.

    func undocumented() {
    \tx := 1
    \t_ = x
    }

    // Get returns the value stored under the key.
    func Get(key string) string { // a trailing comment
    \tv := lookup(key)
    \treturn v
    }
    """)


def test_go_targets_keep_the_first_paragraph_as_written():
    indexed, targets = ev.go_targets("flags/flags.go", GO)
    assert [(t.query, t.answers) for t in targets] == [
        (
            "Parse reads the arguments given and fills the flag set. It stops at the first "
            "non-flag.",
            (ev.Span("flags/flags.go", 13, 18),),
        ),
        ("Get returns the value stored under the key.", (ev.Span("flags/flags.go", 37, 40),)),
    ]
    # Left out: a 2-word doc (Reset), a one-line method (Name), a var, a loose comment.


def test_go_doc_comments_are_blanked_keeping_line_numbers():
    indexed, _ = ev.go_targets("flags/flags.go", GO)
    lines, original = indexed.split("\n"), GO.split("\n")
    assert len(lines) == len(original)
    blanked = {1, 4, 7, 8, 9, 10, 11, 12, 20, 26, 36}
    assert all(lines[n - 1] == "" for n in blanked)
    assert all(lines[n - 1] == original[n - 1] for n in range(1, len(lines)) if n not in blanked)
    assert lines[28] == "// Loose comment, not a doc comment."  # a blank line before the func
    assert lines[36] == "func Get(key string) string { // a trailing comment"
    assert lines[1] == "package flags" and lines[12] == "func Parse(args []string) error {"


def test_a_hit_covers_half_of_any_answer():
    target = ev.Target("q", (ev.Span("a.py", 10, 19), ev.Span("b.py", 1, 4)))
    searcher = SimpleNamespace(results=[], search=lambda q, k, mode: searcher.results)

    def figures(*results):
        searcher.results = [
            SimpleNamespace(path=p, start_line=s, end_line=e) for p, s, e in results
        ]
        return ev.evaluate(searcher, [target], "hybrid")

    assert figures(("a.py", 10, 19)) == (1.0, 1.0)
    assert figures(("c.py", 1, 9), ("b.py", 3, 9)) == (0.5, 1.0)  # 2 of b's 4 lines
    assert figures(("a.py", 15, 40)) == (1.0, 1.0)  # 5 of a's 10 lines
    assert figures(("a.py", 16, 40), ("b.py", 4, 4)) == (0.0, 0.0)


def test_nl_task_is_skipped_without_its_queries(tmp_path, capsys):
    args = argparse.Namespace(nl_queries=tmp_path / "nl_queries.json", queries=5, seed=0)
    assert ev.build_nl(tmp_path / "corpus", args) is None
    assert "nl: skipped" in capsys.readouterr().out


def test_report_keeps_notes_and_the_sections_of_tasks_not_run(tmp_path):
    report = tmp_path / "QUALITY.md"
    report.write_text(
        "# Search quality\n\nintro\n\n## go: Go\n\nold go figures\n\n## Notes\n\nhandwritten\n"
    )
    table = {("(any)", "CodeLamp", "lexical"): (0.5, 0.6)}
    for chunking in ("CodeLamp", "30-line windows"):
        table["(any)", chunking, "lexical"] = (0.5, 0.6)
        for mode in ("vector", "hybrid"):
            table["m1", chunking, mode] = (0.4 if chunking == "CodeLamp" else 0.2, 0.7)
    outcome = ev.Outcome(ev.TASKS["js"], "some packages", 20, 3, 40, 30, table)
    ev.write_report(report, [outcome], seed=0)
    text = report.read_text()
    assert (
        text.index("## js:")
        < text.index("## go: Go\n\nold go figures")
        < text.index("## Notes\n\nhandwritten")
    )
    assert "| CodeLamp | `m1` | hybrid | 0.400 | 0.700 |" in text
    assert "**+100.0%** with `m1`" in text
