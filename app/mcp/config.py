"""``codelamp mcp --print-config CLIENT``: what to add to a coding agent's settings to run
this CodeLamp's MCP server. It prints and never edits a file: the user pastes or runs it."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

from app.core.errors import UsageError

CLIENTS = ("claude", "codex", "cursor", "vscode")


def server_command(paths: list[Path]) -> list[str]:
    """The command that starts this CodeLamp's MCP server, with absolute paths: the
    packaged app's binary, ``python -m app`` when run as a module, else the script run."""
    if getattr(sys, "frozen", False):  # PyInstaller: sys.executable is the app itself
        command = [str(Path(sys.executable).resolve())]
    elif Path(sys.argv[0]).name == "__main__.py":
        command = [sys.executable, "-m", "app"]
    else:
        script = (
            sys.argv[0]
            if Path(sys.argv[0]).parent != Path()
            else (shutil.which(sys.argv[0]) or sys.argv[0])
        )
        command = [str(Path(script).resolve())]
    return command + ["mcp", *map(str, paths)]


def client_config(client: str, paths: list[Path]) -> str:
    """The snippet that registers the server with ``client``, and where it goes."""
    command, *args = server_command(paths)
    entry = {"command": command, "args": args}
    if client == "claude":
        block = json.dumps({"mcpServers": {"codelamp": {"type": "stdio", **entry}}}, indent=2)
        return (
            f"# Claude Code: run this (add --scope user for every project, --scope "
            f"project to share it in .mcp.json)\nclaude mcp add codelamp -- "
            f"{shlex.join([command, *args])}\n\n# or put this in .mcp.json at the "
            f"project's root:\n{block}"
        )
    if client == "codex":
        return (
            f"# Codex: add to ~/.codex/config.toml (or .codex/config.toml in a trusted "
            f"project)\n[mcp_servers.codelamp]\ncommand = {json.dumps(command)}\n"
            f"args = {json.dumps(args)}"
        )
    if client == "cursor":
        block = json.dumps({"mcpServers": {"codelamp": entry}}, indent=2)
        return (
            f"# Cursor: put this in .cursor/mcp.json in the project (or ~/.cursor/"
            f"mcp.json for every project)\n{block}"
        )
    if client == "vscode":
        block = json.dumps({"servers": {"codelamp": {"type": "stdio", **entry}}}, indent=2)
        return f"# VS Code: put this in .vscode/mcp.json in the workspace\n{block}"
    raise UsageError(f"Unknown client {client!r}; use one of {', '.join(CLIENTS)}.")
