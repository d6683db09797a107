"""One GET exchange within a whole-response deadline and a decompressed-size cap.

``request_timeout`` bounds each socket read, so a server that trickles its answer a byte every
few seconds never times out; and ``Content-Encoding: gzip`` lets a few megabytes on the wire
inflate to gigabytes. The body is read here piece by piece as it arrives: ``read1`` makes one
socket read per call (``iter_content`` would block until a whole chunk had come, so the
deadline could not be checked between the bytes of a trickle), and urllib3 inflates at most
one chunk per call, so the cap is checked before memory grows past it. Every exchange is
counted per stream (:class:`Tally`), so the progress line says what the server counted.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from tap_acumatica.errors import AcumaticaAPIError, ResponseLimitError, RetriableError

#: Bytes decoded per read: the most one call may inflate a gzip body to.
CHUNK_BYTES = 64 * 1024
#: A generous size of one record with expanded details, in JSON: pages stay far below
#: ``page_size`` times this (docs/acumatica-api.md §3, §4).
RECORD_BYTES = 256 * 1024
#: The cap for small pages and for documents that are not pages (swagger.json: a few MB).
MIN_BODY_BYTES = 64 * 1024 * 1024
_SAFE_QUERY = "',/()*"


def encode_query(params: Mapping[str, Any]) -> str:
    """Encode a query string, keeping ``$`` in names literal and URL-encoding ``:`` and ``+``.

    docs/acumatica-api.md §4: ``datetimeoffset'…'`` literals need ``:`` → ``%3A`` and ``+`` →
    ``%2B``.
    """
    return "&".join(
        f"{key}={quote(str(value), safe=_SAFE_QUERY)}"
        for key, value in params.items()
        if value is not None
    )


def date_skew(response: requests.Response, previous: float | None) -> float | None:
    """Server clock - local clock in seconds from the ``Date`` header (1 s), else ``previous``."""
    value = response.headers.get("Date")
    if not value:
        return previous
    try:
        server = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return previous
    if server.tzinfo is None:
        server = server.replace(tzinfo=dt.timezone.utc)
    return (server - dt.datetime.now(dt.timezone.utc)).total_seconds()


def max_body_bytes(page_size: int) -> int:
    """The largest decompressed body the tap accepts: many times any page of ``page_size``."""
    return max(MIN_BODY_BYTES, page_size * RECORD_BYTES)


class Tally:
    """Requests put on the wire, per stream; thread-safe."""

    def __init__(self) -> None:
        """Start at zero for every stream."""
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, stream: str) -> None:
        """Count one request sent for ``stream``."""
        with self._lock:
            self._counts[stream] = self._counts.get(stream, 0) + 1

    def of(self, stream: str) -> int:
        """Requests sent so far for ``stream``: retries, resends and re-reads each count."""
        with self._lock:
            return self._counts.get(stream, 0)


@dataclass
class Sink:
    """Where a streamed 2xx body goes, piece by piece, instead of ``response.content``.

    ``restart`` is called before a later try hands over the body again (its earlier pieces
    are stale); without it a try that breaks after some pieces is the last. ``limit``
    replaces the client's cap on the decoded body (a ``$metadata`` is larger than any page);
    ``headers`` are added to the request (``Accept`` of an XML document).
    """

    consume: Callable[[bytes], None]
    restart: Callable[[], None] | None = None
    limit: int | None = None
    headers: Mapping[str, str] | None = None
    fed: int = 0  # bytes handed over by the current try

    def pour(
        self, response: requests.Response, *, started: float, seconds: float, limit: int
    ) -> None:
        """Hand the body of ``response`` to ``consume``; ``response.content`` stays empty."""
        if self.fed:
            if self.restart is None:
                msg = (
                    f"GET {response.url} broke after {self.fed} bytes of its body had been "
                    "read, and the reading cannot start over; try again later"
                )
                raise AcumaticaAPIError(msg)
            self.restart()
            self.fed = 0
        pieces = _pieces(response, started + seconds, seconds, self.limit or limit)
        _drain(response, lambda: self._feed(pieces))
        response._content = b""  # requests' own attribute: nothing is kept

    def _feed(self, pieces: Iterator[bytes]) -> bytes:
        for piece in pieces:
            self.fed += len(piece)
            self.consume(piece)
        return b""


def exchange(
    session: requests.Session,
    prepared: requests.PreparedRequest,
    *,
    timeout: float,
    deadline: float,
    limit: int,
    sink: Sink | None = None,
) -> requests.Response:
    """Send ``prepared`` and read its whole body (``response.content``) within the bounds.

    ``timeout`` bounds each wait for data, ``deadline`` the whole exchange (and so every
    wait), ``limit`` the decoded body. Raises :class:`RetriableError` for what another try may
    fix and :class:`ResponseLimitError` when a bound is broken. With a ``sink``, a 2xx body
    goes to it instead (error answers are still read whole, for ``http.messages``).
    """
    read = min(timeout, deadline)
    if sink is not None and sink.headers:
        prepared.headers.update(sink.headers)
    started = time.monotonic()
    try:
        response = session.send(
            prepared, timeout=(min(30.0, read), read), allow_redirects=True, stream=True
        )
        if sink is not None and 200 <= response.status_code < 300:
            sink.pour(response, started=started, seconds=deadline, limit=limit)
        else:
            read_body(response, started=started, seconds=deadline, limit=limit)
    except requests.exceptions.Timeout as exc:
        raise RetriableError(f"timed out after {read:.0f}s") from exc
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ) as exc:
        raise RetriableError(f"connection error ({type(exc).__name__})") from exc
    return response


def read_body(response: requests.Response, *, started: float, seconds: float, limit: int) -> bytes:
    """The whole (decoded) body of a ``stream=True`` response, stored as its ``content`` too.

    ``started`` is the ``time.monotonic()`` of sending the request. Raises
    :class:`ResponseLimitError` when the body is not complete ``seconds`` after it or decodes
    to more than ``limit`` bytes, and :class:`RetriableError` when the connection breaks; the
    connection is closed either way.
    """
    body = _drain(response, lambda: b"".join(_pieces(response, started + seconds, seconds, limit)))
    # requests' own attribute: the body is read, so .content, .text and .json() answer from it.
    response._content = body
    return body


def _drain(response: requests.Response, read: Callable[[], bytes]) -> bytes:
    """``read()``, with a broken connection as :class:`RetriableError`; closed on any failure."""
    try:
        return read()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        response.close()
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise RetriableError("timed out reading the response") from exc
        raise RetriableError(f"connection error ({type(exc).__name__})") from exc
    except BaseException:
        response.close()
        raise


def _pieces(
    response: requests.Response, deadline: float, seconds: float, limit: int
) -> Iterator[bytes]:
    """The decoded body as it arrives, one socket read at a time, within both bounds."""
    raw = response.raw
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise ResponseLimitError(_late(seconds, size))
        piece = raw.read1(CHUNK_BYTES, decode_content=True)
        if not piece:
            return
        size += len(piece)
        if size > limit:
            raise ResponseLimitError(_large(response, limit))
        yield piece


def _late(seconds: float, size: int) -> str:
    return (
        f"the response was not complete after {seconds:.0f}s (response_deadline_seconds; "
        f"{size} bytes of its body had come): the server or the network sends too slowly; "
        "try again later, or raise response_deadline_seconds or lower page_size"
    )


def _large(response: requests.Response, limit: int) -> str:
    encoding = response.headers.get("Content-Encoding")
    how = f" after {encoding} decoding" if encoding else ""
    return (
        f"the response grew past {limit // (1024 * 1024)} MiB{how}, far more than a page: "
        "the server (or a proxy) sent something that is not an Acumatica answer; stopped "
        "reading it"
    )
