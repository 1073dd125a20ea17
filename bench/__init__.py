"""Benchmarks (`bench/run`) and the reliability harness (`bench/chaos`).

The modules here are importable so the test suite runs reduced versions of the same code
(`tests/test_chaos.py`) instead of copies of it. Nothing in here is imported by `ownsona` itself.
"""
