"""The tap's settings as JSON Schema: what the SDK validates and ``--about`` prints.

Each setting is declared here once, with its description; its default comes from
``settings.DEFAULTS`` and its checks from ``settings``. Building the schema imports singer_sdk
(slow), so it happens on first use only.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tap_acumatica.settings import AUTH_METHODS, DEFAULTS, INITIATE_OAUTH

if TYPE_CHECKING:
    from singer_sdk.typing import Property


@cache
def config_schema() -> dict[str, Any]:
    """The tap's settings as JSON Schema (built once; see the module docstring), by group."""
    from singer_sdk import typing as th  # noqa: PLC0415

    return dict(
        th.PropertiesList(
            *_source_properties(th),
            *_request_properties(th),
            *_run_properties(th),
            *_range_properties(th),
            *_odata_properties(th),
            *_auth_properties(th),
        ).to_dict()
    )


def _prop(name: str, kind: Any, description: str, **extra: Any) -> Property[Any]:
    """One setting; its default, if any, comes from ``DEFAULTS``."""
    from singer_sdk import typing as th  # noqa: PLC0415

    if name in DEFAULTS:
        extra["default"] = DEFAULTS[name]
    return th.Property(name, kind, description=description, **extra)


def _source_properties(th: ModuleType) -> list[Property[Any]]:
    """Where to read from and what: the instance, the endpoint, the entities, the start."""
    return [
        _prop(
            "base_url",
            th.StringType,
            "Instance URL, including the site path if any, e.g. https://example.acumatica.com or "
            "https://erp.example.com/AcumaticaERP. http:// is accepted for loopback hosts only.",
            required=True,
        ),
        _prop(
            "endpoint_name",
            th.StringType,
            "Web-service endpoint (SM207060); the system endpoint is Default.",
        ),
        _prop(
            "endpoint_version",
            th.StringType,
            "Endpoint version, e.g. 24.200.001. Default: the highest version of endpoint_name "
            "that GET /entity lists whose contract the tap speaks: contract 4 (20.200.001 to "
            "25.200.001) or contract 5 (26.200.001); a version of another contract is refused.",
        ),
        _prop(
            "entities",
            th.ArrayType(th.StringType),
            'Only discover these entities (e.g. ["SalesOrder", "Customer"]). Default: every '
            "top-level entity with a list GET.",
        ),
        _prop(
            "start_date",
            th.DateTimeType,
            "Read records changed at or after this time on the first run (ISO-8601 with offset). "
            "Default: everything.",
        ),
    ]


def _request_properties(th: ModuleType) -> list[Property[Any]]:
    """How requests are sent: page size, concurrency, timeout, retries, the login-limit wait."""
    integer = th.IntegerType
    return [
        _prop(
            "page_size",
            integer(minimum=2, maximum=100_000),
            "Records per request ($top). A time window that returns a full page is read on in "
            "$skip pages that overlap by one row and are checked for shifts; a window aims at "
            "8 pages or 8,000 records, whichever is more.",
        ),
        _prop(
            "max_concurrent_requests",
            integer(minimum=1, maximum=100),
            "Windows fetched in parallel, each worker in its own Acumatica session (one API seat "
            "each: cookie logins, or OAuth with scope api:concurrent_access; plain OAuth is one "
            "session, one worker). Keep it at or below the licence's 'Maximum Number of "
            "Concurrent Web Services API Requests' and API users (SM604000).",
        ),
        _prop(
            "request_timeout",
            integer(minimum=1, maximum=86400),
            "Seconds to wait for a response. Acumatica queues requests over the licence limit for "
            "up to 10 minutes without any signal, hence the generous default.",
        ),
        _prop(
            "response_deadline_seconds",
            integer(minimum=1, maximum=86400),
            "Seconds one response may take, from sending the request to the last byte of its "
            "body; request_timeout bounds each wait for data within it, so a server that sends "
            "its answer a byte at a time is stopped here. A response that does not complete in "
            "time ends the run with one line.",
        ),
        _prop(
            "max_tries",
            integer(minimum=1, maximum=100),
            "Attempts per request on 429, 5xx, timeouts, dropped connections and truncated JSON "
            "(exponential backoff with jitter; Retry-After honoured).",
        ),
        _prop(
            "backoff_base_seconds",
            th.NumberType(minimum=0, maximum=60),
            "First retry delay; it doubles per attempt (capped at 60 s), with jitter.",
        ),
        _prop(
            "login_limit_wait_seconds",
            integer(minimum=0, maximum=86400),
            "How long to keep retrying when Acumatica answers 'API Login Limit' for the first "
            "session (every API seat taken). A session nobody signed out keeps its seat until "
            "it has been idle for Acumatica's timeout: often 30 minutes for cookie sessions, up "
            "to 60 for OAuth ones; the default waits 30 minutes (use 3600 to outlast an OAuth "
            "session). 0 fails at once. Extra sessions for max_concurrent_requests never wait: "
            "the run goes on with fewer.",
        ),
    ]


def _run_properties(th: ModuleType) -> list[Property[Any]]:
    """What records carry ($expand, $custom), the run's log, overlapping streams, User-Agent."""
    integer = th.IntegerType
    return [
        _prop(
            "expand",
            th.ObjectType(additional_properties=th.ArrayType(th.StringType)),
            'Entity → detail/linked entities to read with it ($expand), e.g. {"SalesOrder": '
            '["Details", "ShipToAddress"], "Customer": ["MainContact/Address"]}. They become '
            "nested arrays/objects in the records. On an incremental stream, an edit to only an "
            "expanded detail line, contact or address does not move the record's change field, "
            "so it is missed until the record itself changes or the stream is fully refreshed "
            "(the tap warns once per run; see expand_lookback_days).",
        ),
        _prop(
            "custom_fields",
            th.ObjectType(
                additional_properties=th.CustomType(
                    {"type": ["array", "string"], "items": {"type": "string"}}
                )
            ),
            'Entity → custom fields to read ($custom) as View.Field names, or "all" for every '
            'custom field $adHocSchema lists, e.g. {"SalesOrder": ["Document.UsrRepairType"], '
            '"StockItem": "all"}. Records carry them as custom: {"View": {"Field": value}}.',
        ),
        _prop(
            "progress_interval_seconds",
            integer(minimum=1, maximum=86400),
            "Seconds between progress log lines per stream (stderr).",
        ),
        _prop(
            "overlap_streams",
            th.BooleanType,
            "Read the first time window of the next streams (up to max_concurrent_requests - 1 "
            "of them) while a stream is read, on the sessions it leaves idle: a run of many small "
            "streams then takes a fraction of the time, with the same requests. Records and "
            "STATE messages still leave stream after stream. Off: streams are read one after "
            "another.",
        ),
        _prop("user_agent", th.StringType, "User-Agent header sent with every request."),
        _prop(
            "date_only_time_zone",
            th.StringType,
            "IANA time zone of the tenant, e.g. America/New_York. Contract 5 (26.200.001) "
            "returns date-only fields as bare dates; the tap writes each as the UTC instant of "
            "that day's midnight in this zone, which equals what contract 4 returned when this "
            "is the tenant's zone. Date-times that arrive without an offset (custom fields on "
            "real instances) are read as clock times in this zone. Default UTC.",
        ),
    ]


def _range_properties(th: ModuleType) -> list[Property[Any]]:
    """How far before the bookmark and the sync start each run reads."""
    integer = th.IntegerType
    return [
        _prop(
            "lookback_minutes",
            integer(minimum=0, maximum=5_256_000),
            "Re-read this many minutes before the bookmark on every run (covers transactions that "
            "commit long after they stamp their records).",
        ),
        _prop(
            "expand_lookback_days",
            integer(minimum=0, maximum=3650),
            "For incremental streams with expand: re-read this many days before the bookmark on "
            "every run, so a detail line, contact or address edited within that many days of its "
            "record's own last change is picked up (such edits do not move the record's change "
            "field). Costs a re-read of every record changed in those days, on every run. 0 = off.",
        ),
        _prop(
            "safety_lag_seconds",
            integer(minimum=0, maximum=604_800),
            "Read only up to this many seconds before the sync started; newer changes are read on "
            "the next run, so a late-committing transaction is never skipped.",
        ),
    ]


def _odata_properties(th: ModuleType) -> list[Property[Any]]:
    """DAC tables and generic inquiries read over OData, and deleted records (api.md §8, §10)."""
    names = th.ArrayType(th.StringType)
    option = th.ObjectType(
        th.Property("replication_key", th.StringType),
        th.Property("primary_keys", names),
        th.Property("parameters", th.ObjectType(additional_properties=th.StringType)),
        additional_properties=False,
    )
    return [
        _prop(
            "odata_dacs",
            names,
            "DAC tables to read over the DAC OData service, by short (SOLine), full "
            "(PX_Objects_SO_SOLine) or display name. Each is stream dac_<ShortName>, read "
            "incrementally on LastModifiedDateTime when the table has it (else in full each "
            "run), keyed by NoteID when it has one (else by the table's keys). Default: none.",
        ),
        _prop(
            "odata_inquiries",
            th.CustomType({"type": ["array", "string"], "items": {"type": "string"}}),
            'Generic inquiries exposed via OData (SM208000) to read, by name, or "all" for '
            "every inquiry the GI OData service lists. Each is stream gi_<Name>, read in full "
            "each run unless odata_inquiry_options gives it a replication_key. Default: none.",
        ),
        _prop(
            "odata_inquiry_options",
            th.ObjectType(additional_properties=option),
            "Per generic inquiry: replication_key (a date-time column to read incrementally "
            "on; it must be filterable, not a formula), primary_keys (columns that identify a "
            "row; default: the inquiry's keys in $metadata; none makes the stream append-only) "
            'and parameters (name → value), e.g. {"SalesOrders": {"replication_key": '
            '"LastModifiedOn", "primary_keys": ["OrderType", "OrderNbr"]}}.',
        ),
        _prop(
            "track_deletions",
            th.BooleanType,
            "Also emit deleted records, with _sdc_deleted_at set, on incremental REST streams "
            "whose entity maps to a DAC (see deletion_dacs) and on DAC streams with a NoteID. "
            "They come from the DAC OData service's GetDeletedRecords(): each DAC must be listed "
            "on Tables to Track Deleted Records (SM207010); one that is not gets a warning and "
            "no deletions.",
        ),
        _prop(
            "deleted_records_keep_days",
            th.NumberType(exclusive_minimum=0, maximum=36_500),
            "Days to Keep Records as set on SM207010. A stream whose deletions were last read "
            "longer ago than this may have missed some (Acumatica purges them): the tap warns, "
            "and a full refresh reconciles.",
        ),
        _prop(
            "deletion_dacs",
            th.ObjectType(additional_properties=th.StringType),
            "REST entity → DAC whose deleted records it gets, over the built-in map (SalesOrder "
            '→ SOOrder, Customer → Customer, Invoice → ARInvoice, …), e.g. {"Shipment": '
            '"SOShipment"}; "" turns an entity\'s deletions off.',
        ),
    ]


def _auth_properties(th: ModuleType) -> list[Property[Any]]:
    """How the tap signs in: the method, the connected application, then the credentials."""
    return [
        _prop(
            "auth_method",
            th.StringType,
            "oauth_code (authorization-code grant, default), oauth_password (resource-owner "
            "password grant) or cookie (/entity/auth/login session).",
            allowed_values=list(AUTH_METHODS),
        ),
        _prop(
            "client_id",
            th.StringType,
            "OAuth client ID of the connected application (SM303010), <GUID>@<Tenant>.",
        ),
        _prop(
            "client_secret",
            th.StringType,
            "OAuth shared secret of the connected application.",
            secret=True,
        ),
        _prop(
            "redirect_uri",
            th.StringType,
            "Redirect URI registered on the connected application, e.g. "
            "http://localhost:8765/callback (the tap listens there during --login); a "
            "non-loopback URI means you paste the redirected address instead.",
        ),
        _prop(
            "scope", th.StringType, "OAuth scopes; offline_access is needed for a refresh token."
        ),
        _prop(
            "initiate_oauth",
            th.StringType,
            "GETANDREFRESH: sign in through the browser when no usable token exists, then "
            "refresh; REFRESH: never interactive, refresh the stored or given refresh_token; OFF: "
            "use access_token as given.",
            allowed_values=list(INITIATE_OAUTH),
        ),
        *_credential_properties(th),
    ]


def _credential_properties(th: ModuleType) -> list[Property[Any]]:
    """What it signs in with: tokens (store, seeds), the user, cookie options, ``--login``."""
    return [
        _prop(
            "oauth_settings_location",
            th.StringType,
            "Where the rotating OAuth tokens are kept: a JSON file (created 0600), or a "
            "PostgreSQL URL (postgresql://, postgres:// or postgresql+psycopg://, e.g. the value "
            "of MELTANO_DATABASE_URI; needs the tap-acumatica[postgres] extra) to share one token "
            "chain between machines and CI runners. Default: the --config file itself, or "
            ".meltano/tap-acumatica/oauth-tokens.json under Meltano.",
        ),
        _prop(
            "access_token",
            th.StringType,
            "An OAuth access token (with initiate_oauth OFF, the only credential).",
            secret=True,
        ),
        _prop(
            "refresh_token",
            th.StringType,
            "Seed refresh token, used when the token store has none (or a different one that this "
            "value replaces). Rotated tokens go to the token store, not here.",
            secret=True,
        ),
        _prop("username", th.StringType, "Acumatica user (cookie, oauth_password)."),
        _prop("password", th.StringType, "Password of that user.", secret=True),
        _prop(
            "tenant",
            th.StringType,
            "Tenant login name for cookie sign-in; default: the part of client_id after '@'.",
        ),
        _prop("branch", th.StringType, "Branch ID for cookie sign-in (optional)."),
        _prop("locale", th.StringType, "Locale for cookie sign-in (optional)."),
        _prop(
            "login_timeout_seconds",
            th.IntegerType(minimum=1, maximum=86400),
            "How long --login waits for the browser sign-in.",
        ),
        _prop(
            "open_browser",
            th.BooleanType,
            "Open the system browser for sign-in (the URL is always printed to stderr).",
        ),
    ]
