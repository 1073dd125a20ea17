"""MCP over Streamable HTTP: our JSON-RPC transport and the tool registry."""
