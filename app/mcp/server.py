"""The protocol side of ``codelamp mcp``: the official MCP SDK's low-level server, over
stdio. The tools' schemas are written out in tools.py and checked here with jsonschema,
so that a bad argument gets one clear line back (an ``isError`` result) and the server
stays up.

Which folders it serves: the PATHs it was started with; else, at the first tool call,
the client's workspace roots (MCP roots, ``file://`` URIs), else the current folder.

The SDK points fd 1 at stderr while it serves, so nothing but the protocol reaches
stdout; logs go to stderr. The SDK's OpenTelemetry middleware is dropped: nothing about
the calls is recorded or sent anywhere.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPDeprecationWarning

from app import __version__
from app.core.errors import CodeLampError, UsageError
from app.core.project import check_root
from app.mcp.projects import ServedProjects
from app.mcp.tools import TOOLS, check_arguments

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "CodeLamp searches this project's code by meaning and by words, in a local index kept "
    "up to date as files change. Use `search` first to find where something is done, "
    "`read_definition` to read a whole function or class, `find_related` for code like a "
    "given definition, and `index_status` to see what is indexed."
)


class _Serving:
    """The served projects, set up at start (PATHs given) or at the first tool call."""

    def __init__(self, roots: list[Path]) -> None:
        self.projects = ServedProjects(roots) if roots else None
        self._starting: anyio.Lock | None = None  # made in the event loop

    async def for_call(self, session) -> ServedProjects:
        if self._starting is None:
            self._starting = anyio.Lock()
        async with self._starting:
            if self.projects is None:
                roots = await _client_roots(session) or [Path.cwd()]
                log.info("serving %s", ", ".join(map(str, roots)))
                self.projects = await anyio.to_thread.run_sync(ServedProjects, roots)
        return self.projects

    def close(self) -> None:
        if self.projects is not None:
            self.projects.close()


async def _client_roots(session) -> list[Path]:
    """The client's workspace folders, if it offers roots."""
    capabilities = session.client_capabilities
    if capabilities is None or capabilities.roots is None:
        return []
    try:
        with warnings.catch_warnings():  # deprecated by the 2026 protocol; clients use it
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            listed = await session.list_roots()
    except Exception as exc:  # noqa: BLE001 - a client that fails here: the current folder
        log.warning("the client's roots could not be read (%s); serving the current folder", exc)
        return []
    folders = []
    for root in listed.roots:
        url = urlparse(str(root.uri))
        try:
            if url.scheme != "file":
                raise CodeLampError("not a local folder")
            folders.append(check_root(url2pathname(url.path)))
        except CodeLampError as exc:
            log.warning("not serving the root %s: %s", root.uri, exc)
    return folders


def _result(answer: dict) -> types.CallToolResult:
    text = json.dumps(answer, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=answer
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


def build_server(serving: _Serving) -> Server:
    async def list_tools(ctx, params) -> types.ListToolsResult:
        read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=spec.name,
                    description=spec.description,
                    input_schema=spec.schema,
                    annotations=read_only,
                )
                for spec in TOOLS.values()
            ]
        )

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            spec = TOOLS.get(params.name)
            if spec is None:
                raise UsageError(f"No tool {params.name!r}; the tools are {', '.join(TOOLS)}.")
            arguments = check_arguments(spec, params.arguments or {})
            projects = await serving.for_call(ctx.session)
            return _result(await anyio.to_thread.run_sync(spec.run, projects, arguments))
        except CodeLampError as exc:
            return _error(str(exc))
        except Exception as exc:
            log.exception("the tool %s failed", params.name)
            return _error(
                f"Unexpected error ({type(exc).__name__}: {exc}); the details are "
                "in the server's log (stderr). Please report it."
            )

    server = Server(
        "codelamp",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    server.middleware.clear()  # the SDK's only default one: OpenTelemetry spans
    return server


def serve(roots: list[Path]) -> None:
    """Serve MCP on stdin and stdout until the client closes them."""
    serving = _Serving(roots)
    server = build_server(serving)

    async def run() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    try:
        anyio.run(run)
    finally:
        serving.close()
