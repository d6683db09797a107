"""Tests of tap_acumatica/http/: the client, retries, error messages."""
