"""The MCP server at /mcp: chat's service as tools for agents (see app/mcp/server.py)."""
