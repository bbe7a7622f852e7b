"""``codelamp mcp``: CodeLamp's index served to coding agents over the Model Context
Protocol (docs/AGENTS.md). projects.py keeps the served projects' indexes and searchers,
tools.py says what each tool takes and returns, server.py speaks the protocol."""
