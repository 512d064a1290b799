"""Many runs: comparisons and their backends, the simulated-student benchmark, reproductions."""
