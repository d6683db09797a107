"""The few singer-sdk internals tap-acumatica relies on, and why: their one home.

- ``Stream._write_state_message`` and ``state_manager.is_flushed`` (:func:`emit_state`): a
  window's bookmark must leave as a STATE message the moment the window is committed; the
  SDK's public path writes STATE only every ``STATE_MSG_FREQUENCY`` records and at the end.
  Not in BATCH mode: there the SDK's own STATE after each BATCH message is the one that
  follows its data (``WindowedStream._commit``).
- ``Tap._handle_termination`` (overridden in ``tap.py``): the SDK exits 0 on SIGTERM/SIGINT,
  which an orchestrator reads as a complete sync; the run must end ``128 + signum`` and sign
  out first (``Connection.defer_signal``).
- ``singer_sdk.configuration._dict_config.parse_environment_config`` (:func:`env_config`): the
  SDK's own reading of ``TAP_ACUMATICA_*`` variables for ``--config ENV``, which the CLI needs
  before the SDK runs, to validate and redact.
- ``singer_sdk.plugin_base._ConfigInput`` (:func:`config_input`): what the SDK's ``--config``
  callback returns; the CLI builds it from the config it has read and checked, so the SDK runs
  on exactly those values (the same numbers, a byte-order mark allowed).
- ``Stream._tap`` and ``Stream._stream_maps`` (:func:`rekey`): the SDK's mapper takes a
  stream's key properties from the catalog when the tap starts, and the SCHEMA message reads
  them from there; a stream whose ids turn out to be session-scoped must be keyed otherwise
  in the SCHEMA message still to come (``contract/ids.py``).
- ``Stream._tap`` and ``Tap._streams`` (:func:`sync_order`): the streams ``Tap.sync_all``
  syncs, in its order, so a stream can read the next ones' first windows ahead
  (``sync/prefetch.py``); only once the tap has loaded them, never loading them itself (that
  is discovery: network I/O).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from singer_sdk import Stream
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.plugin_base import _ConfigInput


def emit_state(stream: Stream) -> None:
    """Write a STATE message with the stream's state as it is now, through the SDK's path."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def env_config(schema: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Settings from ``<prefix><SETTING>`` environment variables, typed by the schema."""
    return parse_environment_config(dict(schema), prefix)


def config_input(config: dict[str, Any]) -> Any:
    """The SDK's ``--config`` value for a config already read, ``ENV`` variables included."""
    return _ConfigInput(config=config, parse_env=False)


def rekey(stream: Stream, keys: Sequence[str], id_description: str) -> None:
    """Key ``stream`` by ``keys`` in its SCHEMA message (not written yet); describe ``id``.

    The mapper is registered anew, as at start-up, so a user's stream map (an alias,
    ``__key_properties__``) still applies over the new key.
    """
    stream.primary_keys = list(keys)
    mapper = stream._tap.mapper
    raw = copy.deepcopy(mapper.stream_maps[stream.name][0].raw_schema)
    props = raw.get("properties") or {}
    if "id" in props:
        props["id"] = {**props["id"], "description": id_description}
    mapper.register_raw_stream_schema(stream.name, raw, list(keys))
    stream._stream_maps = None  # read again from the mapper


def sync_order(stream: Stream) -> list[Stream]:
    """The streams of ``stream``'s tap in ``Tap.sync_all``'s order, if loaded; else none."""
    loaded = stream._tap._streams
    return list(loaded.values()) if loaded else []
