"""labkit.bench — benchmark commands (timings measured against a baseline in the same run)."""
