"""Tests of tap_acumatica/auth/: authenticators, token store, code grant, --login."""
