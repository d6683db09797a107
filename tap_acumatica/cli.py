"""The ``tap-acumatica`` command: redaction first, one-line errors, ``--login``, then the SDK CLI.

singer-sdk ≥ 0.48 merges the ``--config`` files into a dict and never tells the tap their
paths, so this wrapper records them in ``TapAcumatica.config_files`` for the token store's
config write-back before the SDK runs. It reads the config itself first, so that a bad file or
value gets one line naming it and every secret is registered for redaction before any log, and
the ``--state`` and ``--catalog`` files too (``inputs``); the SDK's CLI is then handed what was
read and checked here, and reads none of them again.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from tap_acumatica import inputs, redact, settings, settings_schema
from tap_acumatica.auth.base import sign_out_all, signed_out_at_exit
from tap_acumatica.auth.config import validate_auth_config
from tap_acumatica.errors import ConfigError, TapAcumaticaError
from tap_acumatica.stamps import parse_datetime

if TYPE_CHECKING:
    import click

logger = logging.getLogger("tap_acumatica.cli")
ENV_PREFIX = "TAP_ACUMATICA_"
_NO_CONFIG_FLAGS = ("--about", "--help", "--version")


def config_paths(args: Sequence[str]) -> list[str]:
    """The values of every ``--config X`` / ``--config=X`` in ``args``, in order."""
    paths: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--config":
            value = next(it, None)
            if value is not None:
                paths.append(value)
        elif arg.startswith("--config="):
            paths.append(arg.split("=", 1)[1])
    return paths


def _env_config(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Settings from ``TAP_ACUMATICA_<SETTING>`` variables (``--config ENV``), the SDK's way."""
    from tap_acumatica import sdk  # noqa: PLC0415 - imports singer_sdk (slow); ENV only

    try:
        config = sdk.env_config(schema, ENV_PREFIX)
    except ValueError as exc:
        msg = f"a {ENV_PREFIX}* variable has a value of the wrong type ({exc})"
        raise ConfigError(msg) from None
    # The SDK leaves a "number" setting as text, which the schema then refuses.
    for name, prop in (schema.get("properties") or {}).items():
        value = config.get(name)
        if isinstance(value, str) and "number" in (prop.get("type") or ()):
            try:
                config[name] = inputs.finite_number(value)
            except ValueError:
                msg = f"{ENV_PREFIX}{name.upper()} {value!r} is not a number, e.g. 1.5"
                raise ConfigError(msg) from None
    return config


def load_config(paths: Sequence[str], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the config files (later wins) and ENV, with one-line errors for bad files."""
    config: dict[str, Any] = {}
    for path in paths:
        if path == "ENV":
            config.update(_env_config(schema))
            continue
        config.update(inputs.read_object(path, "config"))
    return config


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Check ``config`` against the settings schema; ConfigError with one line."""
    from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR  # noqa: PLC0415

    validator = DEFAULT_JSONSCHEMA_VALIDATOR(dict(schema))
    errors = sorted(validator.iter_errors(dict(config)), key=str)
    if errors:
        parts = []
        for err in errors[:3]:
            where = ".".join(str(p) for p in err.absolute_path)
            parts.append(f"{where}: {err.message}" if where else err.message)
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        msg = "invalid config: " + "; ".join(parts) + more
        raise ConfigError(msg)
    check_date_times(config, schema)
    check_header_values(config)
    validate_auth_config(config)


#: Settings sent as HTTP header values (User-Agent; PX-CbApiBranch, docs/acumatica-api.md §1).
HEADER_SETTINGS = ("user_agent", "branch")


def check_header_values(config: Mapping[str, Any]) -> None:
    """Header settings must be sendable: no control characters, no leading space.

    requests refuses such a header on the first request, far from the setting's name.
    """
    for name in HEADER_SETTINGS:
        value = config.get(name)
        if not isinstance(value, str):
            continue
        if value[:1].isspace() or any(ord(c) < 32 or ord(c) == 127 for c in value):
            msg = (
                f"{name} {value!r} cannot be sent as an HTTP header value: remove line "
                "breaks, control characters and leading spaces"
            )
            raise ConfigError(msg)


def check_date_times(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """``format: date-time`` settings (start_date) must parse as the SDK will parse them.

    The schema validator does not check ``format``; a bad value would otherwise fail deep in
    the sync with a bare ValueError.
    """
    for name, prop in (schema.get("properties") or {}).items():
        value = config.get(name)
        if prop.get("format") != "date-time" or not isinstance(value, str):
            continue
        if parse_datetime(value) is None:
            msg = f"{name} {value!r} is not an ISO-8601 date-time; use e.g. 2024-01-31T00:00:00Z"
            raise ConfigError(msg)


def login(paths: Sequence[str]) -> None:
    """``--login``: run the authorization-code grant, store the tokens, sign out."""
    from tap_acumatica.auth.factory import build_authenticator  # noqa: PLC0415
    from tap_acumatica.auth.grants import CodeGrantAuthenticator  # noqa: PLC0415

    if not [p for p in paths if p]:
        msg = "--login needs --config (the file with base_url, client_id, client_secret, ...)"
        raise ConfigError(msg)
    schema = settings_schema.config_schema() if "ENV" in paths else {}  # it only types ENV values
    config = load_config(paths, schema)
    redact.register_config(config, settings.SECRET_KEYS)
    validate_auth_config(config, login=True)
    authenticator = build_authenticator(config, config_files=paths)
    assert isinstance(authenticator, CodeGrantAuthenticator)
    with signed_out_at_exit(authenticator):
        authenticator.login()


def run(args: list[str]) -> None:
    """Dispatch: ``--login``, ``--check``, or validate and hand over to the SDK's CLI."""
    paths = config_paths(args)
    if "--login" in args:
        login(paths)
        return
    if "--check" in args:
        check(paths, args)
        return
    from tap_acumatica.sync.report import RunReport  # noqa: PLC0415
    from tap_acumatica.tap import TapAcumatica  # noqa: PLC0415 - after redaction is installed

    TapAcumatica.config_files = tuple(paths)
    report = TapAcumatica.cli_report = RunReport()
    config = None
    if paths and not any(a in _NO_CONFIG_FLAGS or a.startswith("--about") for a in args):
        config = _checked_config(paths)
    command = TapAcumatica.cli  # sets up console logging: cover the new handlers too
    redact.install()
    _hand_over(command, args, config)
    try:
        command.main(args=args, prog_name="tap-acumatica", standalone_mode=True)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    # The SDK finished every stream; those that failed were skipped (docs/acumatica-api.md §9).
    failures = report.failures
    if failures:
        for failure in failures:
            _stderr_line(f"stream {failure.line}")
        sys.exit(1)
    sys.exit(0)


def _checked_config(paths: Sequence[str]) -> dict[str, Any]:
    """The merged config, its secrets registered for redaction, validated."""
    schema = settings_schema.config_schema()
    config = load_config(paths, schema)
    redact.register_config(config, settings.SECRET_KEYS)
    validate_config(config, schema)
    return config


def _option_value(args: Sequence[str], name: str) -> str | None:
    """The value of the last ``name X`` / ``name=X`` in ``args`` (as click reads it), if any."""
    found = None
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            found = args[index + 1]
        elif arg.startswith(f"{name}="):
            found = arg.split("=", 1)[1]
    return found


def _checked_inputs(args: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The ``--state`` and ``--catalog`` files given, read and checked; their warnings logged."""
    checked = {}
    for name, read in (("state", inputs.read_state), ("catalog", inputs.read_catalog)):
        path = _option_value(args, f"--{name}")
        if path is None:
            continue
        data, warnings = read(path)
        for warning in warnings:
            logger.warning("%s", warning)
        checked[name] = data
    return checked


def _hand_over(command: click.Command, args: Sequence[str], config: dict[str, Any] | None) -> None:
    """Make the SDK's CLI use the files as read and checked here, not read them again.

    Its own reading would fail on what was accepted here (a byte-order mark, a whole STATE
    message) or turn numbers into ``Decimal`` that its config check then refuses.
    """
    from tap_acumatica import sdk  # noqa: PLC0415 - imports singer_sdk, loaded by now

    given: dict[str, Any] = {
        name: io.StringIO(json.dumps(data)) for name, data in _checked_inputs(args).items()
    }
    if config is not None:
        given["config"] = sdk.config_input(config)
    for param in command.params:
        if param.name in given:
            param.callback = lambda _ctx, _param, _value, v=given[param.name]: v


def check(paths: Sequence[str], args: Sequence[str]) -> None:
    """``--check``: can each selected stream be read? A table on stdout; exit 1 if not all."""
    from tap_acumatica.tap import TapAcumatica  # noqa: PLC0415

    if not [p for p in paths if p]:
        msg = "--check needs --config (the file with base_url and the credentials)"
        raise ConfigError(msg)
    config = _checked_config(paths)
    TapAcumatica.config_files = tuple(paths)
    catalog = _checked_inputs(args).get("catalog")
    tap = TapAcumatica(config=config, catalog=catalog, setup_mapper=False)
    rows = tap.preflight()
    header = ("stream", "readable", "why not", "what to do")
    table = [header, *((r.stream, "yes" if r.readable else "no", r.why_not, r.fix) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        line = "  ".join([*cells, row[3]]).rstrip()
        sys.stdout.write(redact.redact(" ".join(line.split("\n"))) + "\n")
    sys.stdout.flush()
    sys.exit(0 if all(r.readable for r in rows) else 1)


def _stderr_line(message: str) -> None:
    """``tap-acumatica: <message>`` as one redacted line on stderr."""
    line = " ".join(redact.redact(message).split())
    sys.stderr.write(f"tap-acumatica: {line}\n")
    sys.stderr.flush()


def fail(message: str) -> NoReturn:
    """Print ``tap-acumatica: <message>`` (one line, redacted) to stderr and exit 1."""
    _stderr_line(message)
    sys.exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    redact.install()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except TapAcumaticaError as exc:
        sign_out_all()
        fail(str(exc))
    except SystemExit:
        sign_out_all()
        raise
    except KeyboardInterrupt:
        sign_out_all()
        sys.stderr.write("tap-acumatica: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        logger.debug("Unexpected error", exc_info=True)
        sign_out_all()
        fail(f"unexpected error ({type(exc).__name__}: {exc}); rerun with LOGLEVEL=DEBUG")
    sign_out_all()
