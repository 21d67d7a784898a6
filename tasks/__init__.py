"""Benchmark adapters, one folder per benchmark; installed as the ``evalsuite.tasks`` package."""
