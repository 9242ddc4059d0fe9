"""Tools around lisearch that are not the library: benchmarks (`make bench`) and the two-worker cluster check."""
