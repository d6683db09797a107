"""The Singer SDK's standard tap tests for the core entities, against a sandbox.

The SDK builds the test class (and discovers the streams) when this module is imported, so
the sandbox is started at module level and stopped when the interpreter exits. It gets extra
API seats because every SDK test builds its own in-process tap (and session).
"""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_acumatica.tap import TapAcumatica
from tests._taprun import tap_config
from tests.support import Sandbox

SANDBOX = Sandbox("--seed", "21", "--records", "120", "--burst-size", "60", "--api-seats", "50")
atexit.register(SANDBOX.stop)

CONFIG = tap_config(
    SANDBOX,
    entities=["Customer", "SalesOrder", "StockItem", "Subaccount"],
    expand={"SalesOrder": ["Details"]},
    page_size=50,
)

TestTapAcumatica = get_tap_test_class(
    tap_class=TapAcumatica,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=60),
)
