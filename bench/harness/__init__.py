"""The load and reliability harness behind `bench/run` and `bench/chaos`.

Importable so the test suite runs reduced versions of the same code (`tests/test_chaos.py`)
instead of copies of it. Nothing here is imported by `ownsona` itself.

    wire        MCP requests as a client sends them; what counts as a failure
    procs       servers under test as child processes: start, first `initialize`, RSS, stop, SIGKILL
    loadgen     the load generator (its own process): N keep-alive clients, bounded in count and time
    scenarios   what request number i of a run is (echo, recall, remember, mixed, reads)
    corpus      memory texts and queries; seed   fills a store through the memory service
    servers     the bare aiohttp echo (the ceiling) and OwnSona's stack with a trivial tool
    sdk_server  the same memory service behind the mcp SDK's MCPServer under uvicorn
    profiled    runs a module under cProfile, every thread included
    crash, fuzz the SIGKILL and hypothesis checks
    benchmark, reliability   the two commands
"""
