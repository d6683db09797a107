"""Tests of tap_acumatica/contract/: discovery, schemas, records."""
