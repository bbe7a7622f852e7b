"""The hand-written natural-language evaluation task (scripts/eval_data/nl_queries.json).

Structure only, no network: the full check against the pinned archive is
scripts/eval_data/check_nl_queries.py. Its span checker is exercised here on inline source.
"""

from __future__ import annotations

import importlib.util
import json
import re
import textwrap
from pathlib import Path

EVAL_DATA = Path(__file__).resolve().parent.parent / "scripts" / "eval_data"


def _load() -> dict:
    return json.loads((EVAL_DATA / "nl_queries.json").read_text(encoding="utf-8"))


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_nl_queries", EVAL_DATA / "check_nl_queries.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_project_is_pinned():
    project = _load()["project"]
    assert project["ecosystem"] == "pypi"
    assert project["name"] and project["version"]
    assert project["file"].startswith(project["name"] + "-" + project["version"])
    assert re.fullmatch(r"[0-9a-f]{64}", project["sha256"])
    assert isinstance(project["source_root"], str)


def test_at_least_100_unique_queries_each_with_answers():
    queries = _load()["queries"]
    assert len(queries) >= 100
    texts = [" ".join(q["query"].lower().split()) for q in queries]
    assert len(set(texts)) == len(texts)
    for q in queries:
        assert 2 <= len(q["query"].split()) <= 15, q["query"]
        assert 1 <= len(q["answers"]) <= 3, q["query"]
        for answer in q["answers"]:
            assert set(answer) == {"path", "symbol", "start", "end"}
            assert answer["path"].endswith(".py") and not answer["path"].startswith("/")
            assert answer["symbol"]
            assert isinstance(answer["start"], int) and isinstance(answer["end"], int)
            assert 1 <= answer["start"] <= answer["end"]


def test_no_file_dominates():
    counts: dict[str, int] = {}
    for q in _load()["queries"]:
        path = q["answers"][0]["path"]
        counts[path] = counts.get(path, 0) + 1
    assert max(counts.values()) <= 8
    assert len(counts) >= 30


def test_span_checker_on_inline_source():
    checker = _checker()
    source = textwrap.dedent("""\
        import functools


        class Cache:
            @functools.cache
            def evict(self, limit):
                return limit

            if True:
                def nested_in_if(self):
                    pass


        async def fetch():
            pass
        """)
    assert checker.definitions(source) == [
        ("Cache", 4, 11),
        ("Cache.evict", 5, 7),
        ("Cache.nested_in_if", 10, 11),
        ("fetch", 14, 15),
    ]

    def doc(*answers, n=1):
        return {"queries": [{"query": f"q{i}", "answers": list(answers)} for i in range(n)]}

    good = {"path": "m.py", "symbol": "Cache.evict", "start": 5, "end": 7}
    problems, _ = checker.check(doc(good, n=100), {"m.py": source})
    assert problems == []

    no_decorator = dict(good, start=6)
    wrong_class = dict(good, symbol="Other.evict")
    missing_file = dict(good, path="n.py")
    problems, _ = checker.check(doc(no_decorator, wrong_class, missing_file), {"m.py": source})
    assert len(problems) == 4  # the three answers, and fewer than 100 queries
