"""Running graphs on a board: measurement runs, benchmarks, per-layer profiles, latency tables."""
