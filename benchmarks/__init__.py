"""Benchmarks for tap-acumatica against the bundled sandbox (``python -m benchmarks``).

Not part of the test run. See :mod:`benchmarks.run` and docs/performance.md.
"""
