"""Benchmarks: `make bench`, `make bench-nurture`, `make bench-admin`. Not part of the test suite."""
