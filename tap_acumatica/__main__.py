"""Run the tap as ``python -m tap_acumatica``."""

from tap_acumatica.cli import main

main()
