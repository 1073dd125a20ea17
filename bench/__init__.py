"""Measurement scripts: `bench/run` (throughput, latency, memory), `bench/chaos` (reliability),
`bench/quality` and friends (retrieval). Importable so the test suite can reuse their code."""
