"""Benchmarks: detection quality and speed of dlpproxy side by side with its peers."""
