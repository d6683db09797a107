"""Seeded fault schedule: the hostile behaviour of real Acumatica instances and networks.

Configuration (``--faults JSON`` or ``POST /_sandbox/faults``), every key optional::

    {
      "http_500": 5,        # % of data requests answered 500 with Acumatica's §9 JSON body
      "http_429": 5,        # % answered 429 (license limit, §6)
      "html_error": 2,      # % answered with an IIS-style HTML error page (502/503, §9)
      "reset": 2,           # % whose connection is reset (RST) after part of the body
      "truncate": 2,        # % answered 200 with a JSON body cut short (Content-Length matches)
      "slow": 5, "slow_ms": 2000,   # % delayed by slow_ms before processing
      "revoke": 1,          # % whose credential is revoked → 401 (token/session dies mid-sync)
      "http_401": 1,        # % answered 401 while the session lives on (api.md §6, §9)
      "script": ["http_500", "reset"],  # the next eligible requests get these faults, in order
      "entities": ["SalesOrder"],       # restrict random/scripted faults to these entities
      "skip_first": 0,      # the first N eligible requests are never faulted
      "include_discovery": false,  # also fault swagger.json and $adHocSchema requests
      "max_faults": null,   # stop injecting after this many faults
      "optimization": {"Payment": ["ApplicationHistory"]},  # $expand that cannot be optimized
      "token_delay_ms": 0,  # delay on /identity/connect/token
      "token_delay_after": false,  # delay after the token was issued/rotated (default: before)
      "retry_after": "120", # Retry-After header value on http_429 answers (any text: "nan", "-5")
      "trickle": 0, "trickle_ms": 1000,  # % whose body is sent one byte every trickle_ms
      "gzip_bomb": 0, "bomb_mb": 1024    # % answered 200 with a gzip body inflating to bomb_mb MiB
    }

``trickle`` and ``gzip_bomb`` are adversarial, not realism: no Acumatica instance is known to
answer so; they check the tap's own bounds (a whole-response deadline, a decompressed-size cap).

Eligible requests: entity data requests (list, get by key/id) and OData data requests; with
``include_discovery`` also swagger.json (entity name "swagger.json") and $adHocSchema.
"""

from __future__ import annotations

import json
import random
import threading
import zlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from tests.sandbox import NOT_LOGGED_IN, Reply, error_body, json_reply

#: ``trickle`` and ``gzip_bomb`` are adversarial: they test the tap's own bounds (README "Faults").
KINDS = (
    "http_500",
    "http_429",
    "html_error",
    "reset",
    "truncate",
    "slow",
    "revoke",
    "http_401",
    "trickle",
    "gzip_bomb",
)
KNOWN_KEYS = {
    *KINDS,
    "slow_ms",
    "script",
    "entities",
    "skip_first",
    "max_faults",
    "optimization",
    "token_delay_ms",
    "token_delay_after",
    "seed",
    "include_discovery",
    "retry_after",
    "trickle_ms",
    "bomb_mb",
    "answers",  # entity -> the JSON its list GETs answer instead (rest.py, api.md §3)
}


class FaultConfigError(ValueError):
    """The fault configuration is not valid."""


def parse_config(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Validate a fault configuration (JSON text or dict)."""
    if raw is None or raw == "":
        return {}
    conf = json.loads(raw) if isinstance(raw, str) else dict(raw)
    if not isinstance(conf, dict):
        msg = "fault configuration must be a JSON object"
        raise FaultConfigError(msg)
    unknown = set(conf) - KNOWN_KEYS
    if unknown:
        msg = f"unknown fault keys: {sorted(unknown)}"
        raise FaultConfigError(msg)
    for kind in KINDS:
        pct = conf.get(kind, 0)
        if not isinstance(pct, (int, float)) or not 0 <= pct <= 100:
            msg = f"{kind} must be a percentage 0-100"
            raise FaultConfigError(msg)
    for kind in conf.get("script", []):
        if kind not in KINDS:
            msg = f"unknown fault kind in script: {kind!r}"
            raise FaultConfigError(msg)
    opt = conf.get("optimization", {})
    if not isinstance(opt, dict):
        msg = "optimization must map entity -> [expanded names]"
        raise FaultConfigError(msg)
    return conf


class Faults:
    """Decides, request by request, which fault (if any) to inject; deterministic per seed."""

    def __init__(self, config: dict[str, Any], seed: int = 0, token_delay_ms: int = 0) -> None:
        self._lock = threading.Lock()
        self.initial = (dict(config), seed, token_delay_ms)
        self.configure(config, seed)
        self.default_token_delay_ms = token_delay_ms
        self.injected: dict[str, int] = {}

    def configure(self, config: dict[str, Any], seed: int | None = None) -> None:
        with self._lock:
            self.config = dict(config)
            self.script = list(config.get("script", []))
            if seed is not None:
                self.rng = random.Random(seed)
            self.eligible_seen = 0
            self.total = 0
            self.seen: dict[str, int] = {}  # per kind since this configuration

    def reset(self) -> None:
        config, seed, delay = self.initial
        self.configure(config, seed)
        self.default_token_delay_ms = delay
        with self._lock:
            self.injected = {}

    def pick(self, entity: str | None) -> str | None:
        """Choose the fault for one eligible data request (None = serve normally)."""
        with self._lock:
            conf = self.config
            entities = conf.get("entities")
            if entities and entity not in entities:
                return None
            self.eligible_seen += 1
            if self.eligible_seen <= int(conf.get("skip_first", 0)):
                return None
            limit = conf.get("max_faults")
            if limit is not None and self.total >= int(limit):
                return None
            kind: str | None = None
            if self.script:
                kind = self.script.pop(0)
            else:
                roll = self.rng.random() * 100
                for k in KINDS:
                    pct = float(conf.get(k, 0))
                    if roll < pct:
                        kind = k
                        break
                    roll -= pct
            if kind is not None:
                self.seen[kind] = self.seen.get(kind, 0) + 1
                self.total += 1
                self.injected[kind] = self.injected.get(kind, 0) + 1
            return kind

    @property
    def discovery(self) -> bool:
        return bool(self.config.get("include_discovery", False))

    def slow_seconds(self) -> float:
        return float(self.config.get("slow_ms", 2000)) / 1000

    def trickle_seconds(self) -> float:
        """Pause between two bytes of a trickled body."""
        return float(self.config.get("trickle_ms", 1000)) / 1000

    def bomb_megabytes(self) -> int:
        return int(self.config.get("bomb_mb", 1024))

    def retry_after(self) -> list[tuple[str, str]]:
        """The ``Retry-After`` header of throttled answers, when the schedule sets one.

        api.md §6 documents no ``Retry-After`` on Acumatica's 429, so there is none by default;
        a proxy in front of an instance may send one, meaningful or not.
        """
        value = self.config.get("retry_after")
        return [] if value is None else [("Retry-After", str(value))]

    def token_delay(self) -> tuple[float, bool]:
        """(seconds, after?) for the token endpoint."""
        ms = self.config.get("token_delay_ms", self.default_token_delay_ms) or 0
        return float(ms) / 1000, bool(self.config.get("token_delay_after", False))

    def cannot_optimize(self, entity: str, expand: str | None) -> Reply | None:
        """api.md §4: an $expand the list optimizer cannot handle → 500 CannotOptimize."""
        bad = self.config.get("optimization", {}).get(entity)
        if not bad or not expand:
            return None
        asked = {part.strip() for part in expand.split(",")}
        hit = [name for name in bad if name in asked]
        if not hit:
            return None
        with self._lock:
            self.injected["optimization"] = self.injected.get("optimization", 0) + 1
        lines = "".join(
            f"{name}.{fld}: View {name} has BQL delegate\r\n"
            for name in hit
            for fld in ("DisplayDocType", "DisplayRefNbr")
        )
        msg = f"Optimization cannot be performed.The following fields cause the error:\r\n{lines}"
        return json_reply(
            500, error_body(msg, "PX.Api.ContractBased.OptimizedExport.CannotOptimizeException")
        )

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"injected": dict(self.injected), "config": dict(self.config)}


def canned(kind: str, nth: int = 0) -> Reply:
    """The reply for faults that replace the response entirely (nth picks the HTML variant)."""
    if kind == "http_500":
        return json_reply(
            500,
            error_body(
                "Transaction (Process ID 67) was deadlocked on lock resources with another "
                "process and has been chosen as the deadlock victim. Rerun the transaction.",
                "System.Data.SqlClient.SqlException",
            ),
        )
    if kind == "http_401":
        # api.md §6, §9: a 401 says "not logged in" but not that the session ended; here it has
        # not (a farm node that does not know the session, a forms ticket that lapsed first
        # [GUESS]): the session keeps its seat until its logout or idle timeout.
        return json_reply(401, NOT_LOGGED_IN)
    if kind == "http_429":
        # api.md §6: over-limit requests get 429; no Retry-After header is documented.
        return json_reply(
            429,
            error_body(
                "The number of requests has exceeded the limit imposed by the license.",
                "PX.Data.PXException",
            ),
        )
    # api.md §9: non-JSON (IIS/HTML) error pages happen.
    status, page = HTML_PAGES[nth % len(HTML_PAGES)]
    return Reply(status, page, "text/html")


IIS_503 = b"""<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">
<HTML><HEAD><TITLE>Service Unavailable</TITLE>
<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>
<BODY><h2>Service Unavailable</h2>
<hr><p>HTTP Error 503. The service is unavailable.</p>
</BODY></HTML>
"""

IIS_502 = b"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" \
"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>502 - Web server received an invalid response while acting as a gateway or proxy
server.</title>
</head><body><div id="header"><h1>Server Error</h1></div>
<div id="content"><fieldset><h2>502 - Web server received an invalid response while acting as a
gateway or proxy server.</h2><h3>There is a problem with the page you are looking for, and it
cannot be displayed.</h3></fieldset></div></body></html>
"""

ASPNET_500 = b"""<!DOCTYPE html>
<html><head><title>Runtime Error</title></head>
<body bgcolor="white"><span><H1>Server Error in '/' Application.<hr width=100% size=1
color=silver></H1><h2> <i>Runtime Error</i> </h2></span>
<b> Description: </b>An application error occurred on the server. The current custom error
settings for this application prevent the details of the application error from being viewed
remotely (for security reasons).<br><br></body></html>
"""

HTML_PAGES = [(503, IIS_503), (502, IIS_502), (500, ASPNET_500)]


# -- a decompression bomb (adversarial, not realism) -------------------------------------------

_BOMB_BLOCK = (
    b'{"id":"6c1b2f9e-0000-4000-8000-000000000000","Description":{"value":"' + b"A" * 900 + b'"}},'
) * 1024  # about 1 MiB of JSON-ish text


@lru_cache(maxsize=4)
def _bomb_parts(megabytes: int) -> tuple[bytes, bytes, int, bytes]:
    """Head, repeated segment, repeat count and tail of a gzip stream of ``[`` + blocks.

    Each block is deflated after a full flush, so its compressed bytes do not depend on what
    came before and can be repeated: about a thousandth of the inflated size goes on the wire,
    and only one block is ever compressed.
    """
    count = max(1, -(-megabytes * 1024 * 1024 // len(_BOMB_BLOCK)))  # at least the size
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    opening = deflate.compress(b"[") + deflate.flush(zlib.Z_FULL_FLUSH)
    segment = deflate.compress(_BOMB_BLOCK) + deflate.flush(zlib.Z_FULL_FLUSH)
    final = deflate.flush(zlib.Z_FINISH)
    crc = zlib.crc32(b"[")
    for _ in range(count):
        crc = zlib.crc32(_BOMB_BLOCK, crc)
    size = (1 + count * len(_BOMB_BLOCK)) & 0xFFFFFFFF
    head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + opening  # gzip header (RFC 1952)
    tail = final + crc.to_bytes(4, "little") + size.to_bytes(4, "little")
    return head, segment, count, tail


def gzip_bomb(megabytes: int) -> tuple[int, Iterator[bytes]]:
    """The wire length and the pieces of a gzip body inflating to ``megabytes`` MiB."""
    head, segment, count, tail = _bomb_parts(megabytes)
    length = len(head) + len(segment) * count + len(tail)

    def pieces() -> Iterator[bytes]:
        yield head
        for _ in range(count):
            yield segment
        yield tail

    return length, pieces()
