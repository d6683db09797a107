"""End to end: Meltano, PostgreSQL, the quick start, README, workflows, meltano.yml, benchmarks."""
