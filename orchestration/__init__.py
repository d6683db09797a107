"""Dagster code location: many Acumatica tenants x stream groups, one ``meltano run`` each.

``dagster job execute -m orchestration -j acumatica_sync`` (or ``dagster dev -m orchestration``)
loads the tenants file named by ``ACUMATICA_TENANTS_FILE`` (default: the example for the bundled
sandbox, tenants.example.yml) when the module is imported; nothing connects anywhere until a step
runs. See docs/scale-out.md.
"""

from __future__ import annotations

from orchestration.definitions import build
from orchestration.tenants import load

defs = build(load())
