"""Tests of the sandbox (tests/sandbox/), the fake Acumatica the other tests run against."""
