"""Benchmarks: each script measures one path and writes its section of docs/benchmarks.md."""
