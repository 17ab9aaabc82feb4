"""Connection limits for the receiver's uvicorn server: header size and count, header and
body deadlines, idle keep-alives, a connection cap with eviction, every refusal logged.

What uvicorn 0.5x offers and why it is not enough on its own (read in its source):

- ``httptools`` (uvicorn's parser when installed, which it is here) has no header size
  limit: the parser concatenates a header value until its end arrives, so three
  connections sending 192 MiB headers held ~800 MiB. ``h11_max_incomplete_event_size``
  bounds headers for the h11 parser only.
- no header deadline: ``timeout_keep_alive`` is armed only after a response, so a
  connection that never sends a byte, or sends one a minute, is held forever.
- ``limit_concurrency`` counts every open connection, idle ones included, and answers 503
  to the request that arrives over it: a flood of idle connections makes it refuse the
  signed webhooks. It never closes a connection, so it does not protect file descriptors.
- ``backlog`` only sizes the kernel's listen queue.

So :func:`receiver_server_config` runs uvicorn with :class:`GuardedHttpToolsProtocol`,
uvicorn's own httptools protocol plus:

- a byte and field count on each request's head (431 and close past the limit: the
  parser's buffer never holds more than the limit plus one socket read);
- a deadline on each phase of a request: the head (408 and close; it starts when the
  connection opens, and again at the first byte of a later request on it) and the body;
  idle keep-alive connections close after ``keep_alive_s`` (uvicorn's timer);
- a cap on open connections, lowered to fit the open-file limit: a new connection over
  the cap closes the connection that has waited longest without a request in progress
  (an idle keep-alive or one still sending its head: a signed webhook's head arrives in
  one packet, an attacker's never does), or is refused with 503 when every connection
  is busy. The file descriptors therefore never run out, and a real sender always gets
  in;
- one warning line per refusal: the reason, the peer, and the numbers behind it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from triangulate.receiver.settings import ReceiverSettings

log = logging.getLogger("triangulate.receiver.connections")

FD_RESERVE = 64
"""File descriptors kept free for the landing files, the listening socket, stdio, the loop."""

HEADERS, BODY, BUSY, IDLE, CLOSED = "headers", "body", "busy", "idle", "closed"
"""A connection's phase: reading a head, reading a body, running the app, waiting, gone."""

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def effective_max_connections(max_connections: int, backlog: int) -> tuple[int, int]:
    """The cap that fits the open-file limit, and that limit (soft ``RLIMIT_NOFILE``).

    At most ``backlog`` connections can be accepted in one burst before the cap is
    enforced on them, so the cap leaves room for them and for :data:`FD_RESERVE`.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections, soft
    return max(1, min(max_connections, soft - backlog - FD_RESERVE)), soft


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that is being refused."""


class ConnectionGuard:
    """What the connections of one server share: the cap, and who may be evicted."""

    def __init__(self, settings: ReceiverSettings, max_connections: int) -> None:
        self.settings = settings
        self.max_connections = max_connections
        self.open: set[GuardedHttpToolsProtocol] = set()
        # connections with no request in progress, longest waiting first
        self.waiting: OrderedDict[GuardedHttpToolsProtocol, None] = OrderedDict()
        self.refusals: dict[str, int] = {}

    def admit(self, connection: GuardedHttpToolsProtocol) -> bool:
        """Make room for ``connection``: close the longest-waiting one if at the cap."""
        while len(self.open) >= self.max_connections:
            if not self.waiting:
                return False
            victim = next(iter(self.waiting))
            victim.refuse(None, "max_connections", evicted_for=connection.peer)
        self.open.add(connection)
        return True

    def count(self, reason: str) -> None:
        self.refusals[reason] = self.refusals.get(reason, 0) + 1


def _peer(transport: asyncio.BaseTransport) -> str | None:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else None


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the receiver's limits (see the module docstring)."""

    guard: ConnectionGuard  # set on the subclass that receiver_server_config builds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phase = CLOSED
        self.peer: str | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.head_bytes = 0  # raw bytes of the head being read, counted per socket read
        self.head_size = 0  # exact size of the head, from the parser's callbacks
        self.header_count = 0

    # --- phases --------------------------------------------------------------------

    def _enter(self, phase: str, timeout: float | None, reason: str | None = None) -> None:
        self.phase = phase
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if timeout is not None:
            self.deadline = self.loop.call_later(timeout, self._expired, reason)
        waiting = self.guard.waiting
        waiting.pop(self, None)
        if phase in (HEADERS, BODY, IDLE):
            waiting[self] = None  # to the end: it started waiting now

    def _expired(self, reason: str | None) -> None:
        self.deadline = None
        if self.phase in (HEADERS, BODY):
            self.refuse(408 if self.phase == HEADERS else None, reason or self.phase)
        elif self.phase == IDLE:
            self._close_idle()

    def _close_idle(self) -> None:
        """An idle keep-alive connection times out: normal HTTP, logged at debug only."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("idle keep-alive connection closed", extra={"fields": {"peer": self.peer}})
        self._enter(CLOSED, None)
        self.guard.open.discard(self)
        if not self.transport.is_closing():
            self.transport.close()

    def _start_head(self) -> None:
        self.head_bytes = self.head_size = self.header_count = 0
        self._enter(HEADERS, self.guard.settings.header_timeout_s, "header_timeout")

    def refuse(self, status: int | None, reason: str, **fields: Any) -> None:
        """Answer ``status`` (if any), close, and log one line with the reason and the peer."""
        if self.phase == CLOSED:
            return
        head_bytes = max(self.head_bytes, self.head_size)
        self._enter(CLOSED, None)
        self.guard.open.discard(self)
        self.guard.count(reason)
        if status is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                % (status, _REASONS[status])
            )
        self.transport.close()
        log.warning(
            "connection refused",
            extra={
                "fields": {
                    "reason": reason,
                    "peer": self.peer,
                    "status": status,
                    "head_bytes": head_bytes,
                    "header_count": self.header_count,
                    "open_connections": len(self.guard.open),
                    **fields,
                }
            },
        )

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.peer = _peer(transport)
        if not self.guard.admit(self):
            self.guard.count("max_connections_busy")
            transport.write(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
                b"retry-after: 1\r\nconnection: close\r\n\r\n"
            )
            transport.close()
            log.warning(
                "connection refused",
                extra={
                    "fields": {
                        "reason": "max_connections_busy",
                        "peer": self.peer,
                        "status": 503,
                        "open_connections": len(self.guard.open),
                    }
                },
            )
            return
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.flow is None:  # refused in connection_made: uvicorn never saw it
            return
        self._enter(CLOSED, None)
        self.guard.open.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase == CLOSED:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            self.refuse(None, "upgrade_unsupported")
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refused):
                return  # refuse() already answered and logged
            self.refuse(400, "invalid_http")
            return
        if self.phase == HEADERS:
            self.head_bytes += len(data)
            if self.head_bytes > self.guard.settings.max_header_bytes:
                self.refuse(431, "header_too_large")

    def timeout_keep_alive_handler(self) -> None:
        self._close_idle()

    # --- parser callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.phase != HEADERS:  # a later request on a keep-alive connection
            self._start_head()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        self.head_size += len(name) + len(value) + 4
        if self.header_count > self.guard.settings.max_header_count:
            self.refuse(431, "too_many_headers")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if max(self.head_size, self.head_bytes) > self.guard.settings.max_header_bytes:
            self.refuse(431, "header_too_large")
            raise _Refused
        self._enter(BODY, self.guard.settings.body_timeout_s, "body_timeout")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self.phase == BODY:
            if self.cycle is not None and self.cycle.response_complete:  # answered early
                self._enter(IDLE, self.guard.settings.keep_alive_s)
            else:
                self._enter(BUSY, None)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.phase == BUSY and not self.transport.is_closing():
            self._enter(IDLE, self.guard.settings.keep_alive_s)


def guarded_protocol_class(settings: ReceiverSettings, max_connections: int) -> type:
    """A protocol class whose connections share one :class:`ConnectionGuard` (one server)."""
    guard = ConnectionGuard(settings, max_connections)
    return type("ReceiverHttpProtocol", (GuardedHttpToolsProtocol,), {"guard": guard})


def receiver_server_config(settings: ReceiverSettings, app: Any, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn config the receiver runs with: ``settings``' limits on every connection."""
    max_connections, nofile = effective_max_connections(settings.max_connections, settings.backlog)
    protocol = guarded_protocol_class(settings, max_connections)
    log.info(
        "connection limits",
        extra={
            "fields": {
                "max_connections": max_connections,
                "max_connections_configured": settings.max_connections,
                "open_file_limit": nofile,
                "backlog": settings.backlog,
                "max_header_bytes": settings.max_header_bytes,
                "max_header_count": settings.max_header_count,
                "header_timeout_s": settings.header_timeout_s,
                "body_timeout_s": settings.body_timeout_s,
                "keep_alive_s": settings.keep_alive_s,
            }
        },
    )
    if max_connections < settings.max_connections:
        log.warning(
            "max_connections lowered to fit the open-file limit (raise ulimit -n to allow more)",
            extra={"fields": {"max_connections": max_connections, "open_file_limit": nofile}},
        )
    return uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        backlog=settings.backlog,
        timeout_keep_alive=settings.keep_alive_s,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        log_config=None,
        access_log=False,
        **kwargs,
    )
