"""Executors: ways of spreading one run's requests over several warm backends (Ray actors)."""
