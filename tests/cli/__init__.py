"""Tests of the command and the tap as a whole: CLI, bad input, SDK standard tests, regressions."""
