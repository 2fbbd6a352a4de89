"""Benchmarks of dts against its peers; `python -m bench.scheduler` (or `make bench`)."""
