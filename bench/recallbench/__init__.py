"""`bench/recall`: recall latency, server RSS and remember throughput as the store grows.

    corpus      realistic, distinct memory texts: the eval facts and variations of them
    inprocess   fill a store through MemoryService (timing remember) and time recall on it
    main        the command: per size, in-process figures, then a real `ownsona serve` over HTTP

Servers, the load generator and percentiles come from `bench.harness`.
"""
