"""Benchmark test sets: registry, loading and question text."""
