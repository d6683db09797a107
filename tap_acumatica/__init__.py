"""tap-acumatica: a Singer tap for Acumatica ERP (see docs/architecture.md for the layout)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    #: The one version number lives in pyproject.toml; this reads the installed metadata.
    __version__ = version("tap-acumatica")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0+unknown"
