"""Tests of tap_acumatica/sync/: windows, scheduling, paging, incremental runs."""
