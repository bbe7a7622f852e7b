"""Related code and whole definitions, over a real index built with the real model, read
with no model at all: on the in-RAM matrix, and with LanceDB's own vector search."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from homes import KINDS, index_at_home

from app.core.errors import UsageError
from app.core.indexer import index_project
from app.core.location import Location
from app.core.search import Searcher
from app.core.storage import ProjectStore

pytestmark = pytest.mark.slow

INVOICES = '''\
import smtplib


def total_with_tax(items, rate):
    """Sum the prices of the items and add the sales tax."""
    subtotal = 0.0
    for item in items:
        subtotal += item.price * item.quantity
    return round(subtotal * (1 + rate), 2)


def send_reminder_email(address, days_late):
    with smtplib.SMTP("localhost") as server:
        server.sendmail("billing@example.com", address, f"Your invoice is {days_late} late")
'''

ORDERS = '''\
class OrderBook:
    """Every open order of a customer."""

    def order_total_including_tax(self, lines, tax_rate):
        """Add up the order lines and apply the tax rate."""
        amount = 0.0
        for line in lines:
            amount += line.price * line.quantity
        return round(amount * (1 + tax_rate), 2)

    def cancel(self, order_id):
        self.open.pop(order_id, None)
'''

TEXT = '''\
import re


def slugify(title):
    """Lower-case words joined by dashes, for a URL."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def parse_iso_date(value):
    year, month, day = value.split("-")
    return int(year), int(month), int(day)
'''

# Long enough to be split into several chunks, which share its definition.
REPORT = (
    "def monthly_report(rows):\n"
    + "".join(
        f"    section_{n} = summarise(rows, column='metric_{n}', window={n}, label='part {n}')\n"
        for n in range(40)
    )
    + "    return [section_0, section_39]\n"
)

FILES = {
    "src/invoices.py": INVOICES,
    "src/orders.py": ORDERS,
    "src/text.py": TEXT,
    "src/report.py": REPORT,
    "web/slug.ts": "export const slug = (s: string) =>\n"
    "  s.toLowerCase().replace(/[^a-z0-9]+/g, '-');\n",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root.resolve()


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.split("\n"), 1) if needle in line)


@pytest.fixture(scope="module", params=KINDS)
def indexed(request, tmp_path_factory, embedder) -> tuple[Path, Path, str]:
    root = write(tmp_path_factory.mktemp("related") / "shop", FILES)
    home = index_at_home(root, tmp_path_factory.mktemp("related-home"), embedder, request.param)
    return root, home, request.param


@pytest.fixture
def searcher(indexed, monkeypatch) -> Searcher:
    """No embedder: related code and definitions need no model."""
    root, home, kind = indexed
    monkeypatch.setenv("CODELAMP_HOME", str(home))
    searcher = Searcher(ProjectStore.open(root), embedder=None)
    assert searcher.has_ann == (kind == "ann")
    return searcher


def test_related_finds_the_near_duplicate_and_never_itself(searcher):
    here = line_of(INVOICES, "subtotal += ")
    found = searcher.related("src/invoices.py", here, k=5)
    top = found[0]
    assert (top.path, top.symbol) == ("src/orders.py", "OrderBook.order_total_including_tax")
    source = searcher.definition_at("src/invoices.py", here)
    assert source.symbol == "total_with_tax"
    assert not any(r.overlaps(source) for r in found)
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)
    assert top.snippet == "def order_total_including_tax(self, lines, tax_rate):"
    assert top.text.strip().endswith("return round(amount * (1 + tax_rate), 2)")
    assert len(found) == 5 and len({(r.path, r.start_line) for r in found}) == 5


def test_a_split_definition_is_compared_whole_from_any_of_its_lines(searcher):
    first, last = 1, line_of(REPORT, "return [section_0")
    parts = searcher.chunks.scan(["start_line"], paths=["src/report.py"])
    assert parts.num_rows >= 2, "the premise: monthly_report is stored in several chunks"
    found = searcher.related("src/report.py", first, k=10)
    assert [(r.path, r.start_line) for r in found] == [
        (r.path, r.start_line) for r in searcher.related("src/report.py", last, k=10)
    ]
    assert not any(r.path == "src/report.py" for r in found), "none of its parts"


def test_related_filters_by_language_and_path(searcher):
    here = line_of(TEXT, "def slugify")
    assert {r.language for r in searcher.related("src/text.py", here, language="typescript")} == {
        "typescript"
    }
    assert {r.path for r in searcher.related("src/text.py", here, path_glob="src/")} <= {
        "src/invoices.py",
        "src/orders.py",
        "src/text.py",
        "src/report.py",
    }
    assert searcher.related("src/text.py", here, path_glob="nowhere/") == []


def test_paths_absolute_inside_the_root_or_with_dots_are_the_indexed_ones(searcher):
    here = line_of(ORDERS, "def cancel")
    for path in (
        str(searcher.store.root / "src/orders.py"),
        "./src/orders.py",
        "src//orders.py",
        "web/../src/orders.py",
    ):
        r = searcher.definition_at(path, here)
        assert (r.path, r.symbol, r.start_line) == ("src/orders.py", "OrderBook.cancel", here)


@pytest.mark.parametrize(
    ("path", "line", "message"),
    [
        (
            "src/nope.py",
            1,
            r"^src/nope.py is not in the index of .*/shop \(indexed files: 5\)\. "
            r"Check the path, relative to the project\.$",
        ),
        ("orders.py", 1, r"^orders.py is not in the index .* Did you mean src/orders.py\?$"),
        ("/elsewhere/src/orders.py", 1, r"^/elsewhere/src/orders.py is not inside .*/shop"),
        ("src/orders.py", 99, r"^src/orders.py has 12 lines; line 99 is past its end\.$"),
        ("src/orders.py", 0, r"^Lines are numbered from 1; there is no line 0 in src/orders.py\.$"),
        ("src/orders.py", -3, r"no line -3 in src/orders.py"),
    ],
)
def test_a_wrong_file_or_line_is_one_clear_line(searcher, path, line, message):
    for ask in (searcher.related, searcher.definition_at):
        with pytest.raises(UsageError, match=message) as caught:
            ask(path, line)
        assert "\n" not in str(caught.value)


def test_k_below_one_is_refused(searcher):
    with pytest.raises(UsageError, match="at least 1, not 0"):
        searcher.related("src/orders.py", 1, k=0)


def test_definition_at_gives_the_innermost_definition_whole(searcher):
    method = searcher.definition_at("src/orders.py", line_of(ORDERS, "amount = 0.0"))
    assert (method.symbol, method.language) == ("OrderBook.order_total_including_tax", "python")
    lines = ORDERS.split("\n")
    assert method.text == "\n".join(lines[method.start_line - 1 : method.end_line])
    assert method.text.startswith("    def order_total_including_tax(")
    assert method.snippet == "def order_total_including_tax(self, lines, tax_rate):"
    assert searcher.definition_at("src/orders.py", 1).symbol == "OrderBook"

    report = searcher.definition_at("src/report.py", line_of(REPORT, "section_30 ="))
    whole = ("monthly_report", 1, REPORT.rstrip("\n"))
    assert (report.symbol, report.start_line, report.text) == whole


def test_a_blank_line_gives_the_nearest_definition_the_one_below_on_a_tie(searcher):
    below = line_of(TEXT, "def parse_iso_date")
    assert TEXT.split("\n")[below - 3 : below - 1] == ["", ""]
    assert searcher.definition_at("src/text.py", below - 1).symbol == "parse_iso_date"
    assert searcher.definition_at("src/text.py", below - 2).symbol == "slugify"
    tie = line_of(ORDERS, "def cancel") - 1
    assert ORDERS.split("\n")[tie - 1] == ""
    assert searcher.definition_at("src/orders.py", tie).symbol == "OrderBook.cancel"


def test_definition_at_reads_the_file_as_it_is_now(tmp_path, embedder):
    root = write(tmp_path / "proj", {"calc.py": INVOICES})
    index_project(root, embedder)
    here = line_of(INVOICES, "subtotal = 0.0")
    (root / "calc.py").write_text(INVOICES.replace("subtotal = 0.0", "subtotal = 0.5"))
    r = Searcher(ProjectStore.open(root)).definition_at("calc.py", here)
    assert "    subtotal = 0.5" in r.text.split("\n") and r.symbol == "total_with_tax"


def test_a_shared_index_without_its_folder_gives_the_text_it_stored(tmp_path, embedder):
    root = write(tmp_path / "proj", FILES)
    store = Location.parse(str(tmp_path / "shared"))
    index_project(root, embedder, location=store)
    shutil.move(root, tmp_path / "moved")  # this machine has no checkout
    searcher = Searcher(ProjectStore.open(None, location=store))
    r = searcher.definition_at("src/report.py", 20)
    assert (r.symbol, r.text) == ("monthly_report", REPORT.rstrip("\n"))
    assert searcher.related("src/invoices.py", 5)[0].symbol == "OrderBook.order_total_including_tax"
    with pytest.raises(UsageError, match="src/text.py has 11 lines; line 12 is past its end"):
        searcher.related("src/text.py", 12)
