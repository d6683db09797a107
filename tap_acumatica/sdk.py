"""The few singer-sdk internals tap-acumatica relies on, and why: their one home.

- ``Stream._write_state_message`` and ``state_manager.is_flushed`` (:func:`emit_state`): a
  window's bookmark must leave as a STATE message the moment the window is committed; the
  SDK's public path writes STATE only every ``STATE_MSG_FREQUENCY`` records and at the end.
- ``Tap._handle_termination`` (overridden in ``tap.py``): the SDK exits 0 on SIGTERM/SIGINT,
  which an orchestrator reads as a complete sync; the run must end ``128 + signum`` and sign
  out first (``Connection.defer_signal``).
- ``singer_sdk.configuration._dict_config.parse_environment_config`` (:func:`env_config`): the
  SDK's own reading of ``TAP_ACUMATICA_*`` variables for ``--config ENV``, which the CLI needs
  before the SDK runs, to validate and redact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from singer_sdk import Stream
from singer_sdk.configuration._dict_config import parse_environment_config


def emit_state(stream: Stream) -> None:
    """Write a STATE message with the stream's state as it is now, through the SDK's path."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def env_config(schema: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Settings from ``<prefix><SETTING>`` environment variables, typed by the schema."""
    return parse_environment_config(dict(schema), prefix)
