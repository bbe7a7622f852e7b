"""`codelamp mcp`: the official MCP SDK's own client drives the real server, started as
`python -m app mcp` in a subprocess over stdio, on a real index of the sample project made
with the real default model. The subprocess inherits the test's CODELAMP_HOME."""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from sample_project import make_project

from app.core.indexer import index_project
from app.core.lock import watchers_of
from app.core.search import MAX_QUERY_CHARS
from app.core.storage import ProjectStore

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 120.0  # for the watcher or a first index, on a loaded machine


def _server(*args: str, cwd: Path = REPO) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "app", "mcp", *args],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=str(cwd),
    )


def _session(
    params: StdioServerParameters,
    body: Callable[[ClientSession], Awaitable],
    log: Path,
    roots: list[Path] | None = None,
):
    """Run ``body`` with an initialized client session of a server started by ``params``
    (offering ``roots`` when given); what it returns."""

    async def list_roots(context) -> types.ListRootsResult:
        return types.ListRootsResult(
            roots=[types.Root(uri=root.as_uri(), name=root.name) for root in roots]
        )

    async def main():
        with log.open("a") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(
                    read, write, list_roots_callback=list_roots if roots is not None else None
                ) as session,
            ):
                await session.initialize()
                return await body(session)

    return anyio.run(main)


async def _call(session: ClientSession, tool: str, **arguments) -> dict:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


async def _error(session: ClientSession, tool: str, **arguments) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result.content[0].text
    message = result.content[0].text
    assert "\n" not in message
    return message


async def _until(what: Callable[[], Awaitable], done: Callable[[object], bool]):
    """Ask ``what`` until ``done`` says yes (WAIT_S at most); the last answer."""
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = await what()
        if done(answer) or time.monotonic() > deadline:
            return answer
        await anyio.sleep(0.5)


@pytest.fixture
def indexed(tmp_path: Path, embedder) -> Path:
    root = make_project(tmp_path / "demo")
    index_project(root, embedder)
    return root.resolve()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Path]:
    """The servers' stderr, printed (pytest shows it when the test fails)."""
    path = tmp_path / "server.log"
    path.touch()
    yield path
    print(path.read_text())


@pytest.mark.slow
def test_tools_schemas_and_a_real_search(indexed: Path, log: Path):
    async def body(session: ClientSession):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        lexical = await _call(session, "search", query="retry_failed_upload", mode="lexical")
        status_before = await _call(session, "index_status")
        hybrid = await _call(session, "search", query="where do we retry failed uploads?")
        text = await _call(session, "search", query="requests.put", mode="text")
        status_after = await _call(session, "index_status")
        return tools, lexical, status_before, hybrid, text, status_after

    tools, lexical, before, hybrid, text, after = _session(_server(str(indexed)), body, log)
    assert set(tools) == {"search", "find_related", "read_definition", "index_status"}
    for tool in tools.values():
        assert tool.description and tool.input_schema["additionalProperties"] is False
        assert tool.annotations.read_only_hint is True
    search = tools["search"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["mode"]["enum"] == [
        "hybrid",
        "semantic",
        "lexical",
        "text",
        "regex",
    ]
    assert search["properties"]["k"]["maximum"] == 100
    assert tools["find_related"].input_schema["required"] == ["path", "line"]

    assert lexical["results"][0]["path"] == "src/upload.py"
    assert not before["model_loaded"], "a lexical search loaded the model"
    assert before["role"] == "writer" and before["files"] == 7 and before["chunks"] > 0
    assert before["root"] == str(indexed) and "python" in before["languages"]

    best = hybrid["results"][0]
    assert best["path"] == "src/upload.py" and best["symbol"] == "retry_failed_upload"
    assert best["code"].startswith("def retry_failed_upload(")
    assert best["code_lines"] == [best["start_line"], best["end_line"]]
    assert "note" not in hybrid and hybrid["tokens"] <= 2000
    assert after["model_loaded"] and hybrid["token_count"] == "the model's tokenizer"

    assert [(r["path"], r["code"].strip()) for r in text["results"]] == [
        (
            "src/upload.py",
            'response = requests.put(self.base_url + "/blobs", data=blob, timeout=30)',
        )
    ]
    assert text["total"] == 1


@pytest.mark.slow
def test_code_is_trimmed_around_the_match_within_the_budget(tmp_path: Path, embedder, log: Path):
    root = tmp_path / "long"
    root.mkdir()
    body = "\n".join(f"    step_{i} = compute_{i}(data)" for i in range(200))
    (root / "pipeline.py").write_text(
        f"def pipeline(data):\n{body}\n    needle_marker = 1\n{body}\n    return data\n"
    )
    index_project(root, embedder)

    async def search(session: ClientSession):
        return [
            await _call(session, "search", query="needle_marker", mode="lexical", max_lines=9, k=1),
            await _call(session, "search", query="needle_marker", mode="lexical", max_tokens=100),
        ]

    by_lines, by_tokens = _session(_server(str(root)), search, log)
    result = by_lines["results"][0]
    first, last = result["code_lines"]
    assert last - first + 1 == 9 and first <= result["match_line"] <= last
    assert "needle_marker = 1" in result["code"] and len(result["code"].split("\n")) == 9
    assert by_tokens["tokens"] <= 100 and "needle_marker" in by_tokens["results"][0]["code"]
    assert by_tokens["token_count"] == "estimated, 4 characters per token"


@pytest.mark.slow
def test_bad_input_is_a_clear_tool_error_and_the_server_stays_up(
    indexed: Path, log: Path, tmp_path: Path
):
    outside = tmp_path / "secret.txt"
    outside.write_text("password = hunter2\n")
    (indexed / "src" / "escape.py").symlink_to(outside)

    async def body(session: ClientSession):
        errors = {
            "unknown project": await _error(session, "search", query="x", project="nope"),
            "empty query": await _error(session, "search", query=""),
            "blank query": await _error(session, "search", query="   "),
            "huge query": await _error(
                session, "search", query="a" * (MAX_QUERY_CHARS + 1), mode="lexical"
            ),
            "k not a number": await _error(session, "search", query="x", k="ten"),
            "negative k": await _error(session, "search", query="x", k=-1),
            "k too large": await _error(session, "search", query="x", k=100_000),
            "unknown mode": await _error(session, "search", query="x", mode="fuzzy"),
            "unknown argument": await _error(session, "search", query="x", kk=3),
            "missing query": await _error(session, "search"),
            "bad regex": await _error(session, "search", query="(", mode="regex"),
            "unknown tool": await _error(session, "delete_everything"),
            "dot-dot": await _error(session, "read_definition", path="../../etc/passwd", line=1),
            "absolute outside": await _error(session, "find_related", path="/etc/passwd", line=1),
            "symlink out": await _error(session, "read_definition", path="src/escape.py", line=1),
            "no such file": await _error(session, "read_definition", path="src/nope.py", line=1),
            "line zero": await _error(session, "read_definition", path="src/upload.py", line=0),
        }
        still_up = await _call(session, "search", query="parse_config", mode="lexical")
        return errors, still_up

    errors, still_up = _session(_server(str(indexed)), body, log)
    assert "No served project 'nope'" in errors["unknown project"]
    assert "query must not be empty" in errors["empty query"]
    assert "blank" in errors["blank query"]
    assert f"the limit is {MAX_QUERY_CHARS:,}" in errors["huge query"]
    assert "k must be of type integer" in errors["k not a number"]
    assert "k must be at least 1" in errors["negative k"]
    assert "k must be at most 100" in errors["k too large"]
    assert "mode must be one of hybrid, semantic" in errors["unknown mode"]
    assert "'kk' was unexpected" in errors["unknown argument"]
    assert "'query' is a required property" in errors["missing query"]
    assert "Not a valid regular expression" in errors["bad regex"]
    assert "No tool 'delete_everything'" in errors["unknown tool"]
    assert "outside the project" in errors["dot-dot"]
    assert "outside the project" in errors["absolute outside"]
    assert "outside the project" in errors["symlink out"] and "hunter2" not in str(errors)
    assert "No file 'src/nope.py'" in errors["no such file"]
    assert "line must be at least 1" in errors["line zero"]
    assert still_up["results"][0]["path"] == "src/config.py"


@pytest.mark.slow
def test_an_edit_is_found_by_the_next_search_through_the_watcher(indexed: Path, log: Path):
    async def body(session: ClientSession):
        await _call(session, "index_status")  # the watcher runs
        await anyio.sleep(1.0)
        (indexed / "src" / "upload.py").write_text(
            (indexed / "src" / "upload.py").read_text()
            + "\n\ndef resume_interrupted_transfer(client, blob):\n    return client.send(blob)\n"
        )

        async def search():
            return await _call(
                session, "search", query="resume_interrupted_transfer", mode="lexical"
            )

        return await _until(search, lambda found: found["results"])

    found = _session(_server(str(indexed)), body, log)
    assert found["results"][0]["symbol"] == "resume_interrupted_transfer"
    assert "def resume_interrupted_transfer(client, blob):" in found["results"][0]["code"]


@pytest.mark.slow
def test_two_servers_on_one_project_have_one_writer(indexed: Path, log: Path):
    new_function = "def checksum_of_blob(blob):\n    return sum(blob) % 65521\n"

    async def body(first: ClientSession):
        async def second_body(second: ClientSession):
            roles = sorted(
                [
                    (await _call(first, "index_status"))["role"],
                    (await _call(second, "index_status"))["role"],
                ]
            )
            watchers = watchers_of(indexed)
            (indexed / "src" / "checksum.py").write_text(new_function)
            found = []
            for session in (first, second):

                async def search(session=session):
                    return await _call(session, "search", query="checksum_of_blob", mode="lexical")

                found.append(
                    await _until(
                        search, lambda answer: answer["results"][0]["path"] == "src/checksum.py"
                    )
                )
            return roles, watchers, found

        with log.open("a") as errlog:
            async with (
                stdio_client(_server(str(indexed)), errlog=errlog) as (read, write),
                ClientSession(read, write) as second,
            ):
                await second.initialize()
                return await second_body(second)

    roles, watchers, found = _session(_server(str(indexed)), body, log)
    assert roles == ["reader", "writer"]
    assert len(watchers) == 1 and watchers[0].command == "codelamp mcp"
    assert all(f["results"][0]["path"] == "src/checksum.py" for f in found)
    columns = ["path", "start_line", "end_line", "text"]
    rows = ProjectStore.open(indexed).chunks().scan(columns).select(columns).to_pylist()
    keys = [tuple(r.values()) for r in rows]
    assert len(keys) == len(set(keys)), "a chunk is stored twice"


@pytest.mark.slow
def test_a_reader_takes_over_when_the_writer_exits(indexed: Path, log: Path):
    async def main():
        writer_role = {}
        started, stop, gone = anyio.Event(), anyio.Event(), anyio.Event()

        async def writer(errlog):  # the first server started: it writes, until told to exit
            async with (
                stdio_client(_server(str(indexed)), errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                writer_role["role"] = (await _call(session, "index_status"))["role"]
                started.set()
                await stop.wait()
            gone.set()

        with log.open("a") as errlog:
            async with anyio.create_task_group() as group:
                group.start_soon(writer, errlog)
                await started.wait()
                async with (
                    stdio_client(_server(str(indexed)), errlog=errlog) as (read, write),
                    ClientSession(read, write) as reader,
                ):
                    await reader.initialize()
                    before = (await _call(reader, "index_status"))["role"]
                    stop.set()
                    await gone.wait()

                    async def status():
                        return await _call(reader, "index_status")

                    # The role is taken first; its watcher starts once the index is open.
                    after = await _until(status, lambda s: s["role"] == "writer" and s["watching"])
                    (indexed / "src" / "late.py").write_text(
                        "def arrived_after_takeover():\n    return 1\n"
                    )

                    async def search():
                        return await _call(
                            reader, "search", query="arrived_after_takeover", mode="lexical"
                        )

                    found = await _until(search, lambda answer: answer["results"])
        return [writer_role["role"], before], after, found

    before, after, found = anyio.run(main)
    assert before == ["writer", "reader"]
    assert after["role"] == "writer" and after["watching"] == "watching"
    assert found["results"][0]["path"] == "src/late.py"


@pytest.mark.slow
def test_a_folder_without_an_index_answers_by_text_then_semantically(tmp_path: Path, log: Path):
    root = make_project(tmp_path / "fresh").resolve()

    async def body(session: ClientSession):
        early = await _call(session, "search", query="retry_failed_upload")
        status = await _call(session, "index_status")

        async def ready():
            return await _call(session, "index_status")

        await _until(ready, lambda s: s["state"] == "ready" and not s["indexing"])
        later = await _call(session, "search", query="where do we retry failed uploads?")
        return early, status, later

    early, status, later = _session(_server(str(root)), body, log)
    assert "no index yet" in early["note"] and "Text search of the files on disk" in early["note"]
    assert early["results"] and all(r["path"] == "src/upload.py" for r in early["results"])
    assert status["role"] == "writer"
    assert status["state"] in ("not indexed", "unfinished", "ready")
    assert "note" not in later and later["results"][0]["path"] == "src/upload.py"


@pytest.mark.slow
def test_serves_the_roots_the_client_offers(indexed: Path, tmp_path: Path, log: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    async def body(session: ClientSession):
        return await _call(session, "index_status")

    offered = _session(_server(cwd=elsewhere), body, log, roots=[indexed])
    assert offered["root"] == str(indexed) and offered["state"] == "ready"
    current = _session(_server(cwd=indexed), body, log)  # no roots: the current folder
    assert current["root"] == str(indexed)


@pytest.mark.slow
def test_find_related(indexed: Path, log: Path):
    async def body(session: ClientSession):
        return await _call(session, "find_related", path="src/config.py", line=5)

    related = _session(_server(str(indexed)), body, log)["results"]
    symbols = [r["symbol"] for r in related]
    assert "parse_config" not in symbols  # not itself
    # Its sibling in the same file, near the top (the README's "Configuration" section may
    # come first: it is about the same thing).
    sibling = related[symbols.index("save_config")]
    assert symbols.index("save_config") < 3 and sibling["code"].startswith("def save_config(")


@pytest.mark.slow
def test_read_definition(indexed: Path, log: Path):
    async def body(session: ClientSession):
        return (
            await _call(session, "read_definition", path="src/upload.py", line=20),
            await _error(session, "read_definition", path="src/upload.py", line=999),
        )

    definition, past_end = _session(_server(str(indexed)), body, log)
    assert definition["symbol"] == "retry_failed_upload"
    assert definition["code"].startswith("def retry_failed_upload(")
    assert definition["code"].rstrip().endswith("return False")
    assert "999" in past_end


@pytest.mark.parametrize("client", ["claude", "codex", "cursor", "vscode"])
def test_print_config(client: str, tmp_path: Path):
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "app", "mcp", "--print-config", client, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    command, args = sys.executable, ["-m", "app", "mcp", str(tmp_path.resolve())]
    body = "\n".join(line for line in out.splitlines() if not line.startswith("#"))
    if client == "codex":
        assert tomllib.loads(body)["mcp_servers"]["codelamp"] == {"command": command, "args": args}
        return
    block = json.loads(body[body.index("{") :])
    servers = block["servers" if client == "vscode" else "mcpServers"]
    assert servers["codelamp"]["command"] == command and servers["codelamp"]["args"] == args
    if client == "claude":
        assert f"claude mcp add codelamp -- {command} -m app mcp" in out
    if client == "vscode":
        assert servers["codelamp"]["type"] == "stdio"
