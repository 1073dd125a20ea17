"""The memory: validation, storage, search and the service the tools call."""
