"""Benchmarks are run explicitly: `pytest bench/ --benchmark-only` (see bench/RESULTS.md)."""
