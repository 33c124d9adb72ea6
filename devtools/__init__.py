"""Development tools: the local stack behind `make run` and the local servers tests and benchmarks start."""
