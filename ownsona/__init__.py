"""OwnSona: one durable memory that every assistant shares, served over MCP."""

__version__ = "0.1.0"
