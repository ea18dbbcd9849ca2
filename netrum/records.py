"""Frozen records that flow from the core to the sinks.

Units are in the field names: ``*_ts_ns`` are integer nanoseconds since the epoch taken from packet
timestamps (never the wall clock), ``*_bytes`` are byte counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# A raw frame from a capture source: (ts_ns, linktype, data, wire_len). A plain tuple on purpose: the
# per-packet path allocates no objects of its own.
Frame = tuple[int, int, bytes, int]


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """Identity of one TCP connection, as the flow table resolved it."""

    conn_id: str  # stable id, e.g. "C000001" (order of first sight in the capture)
    client_ip: str  # printable address (IPv4 dotted quad, IPv6 compressed form)
    client_port: int
    server_ip: str
    server_port: int
    midstream: bool = False  # no SYN seen: the capture picked the connection up in flight
    role_guessed: bool = False  # client/server decided by port heuristics, not SYN or bytes


@dataclass(frozen=True, slots=True)
class Transaction:
    """One request/response exchange on one connection (either side may be missing).

    Timestamps are those of the packets that carried the first and last byte of each message.
    An interim 1xx response is never the response: it only appears in ``interim_statuses``.
    """

    conn_id: str
    depth: int  # 1-based position of this exchange on its connection
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    request_ts_ns: int | None = None  # first byte of the request
    request_end_ts_ns: int | None = None  # last byte of the request (end of its body)
    response_ts_ns: int | None = None  # first byte of the final response
    response_end_ts_ns: int | None = None  # last byte of the final response
    method: str | None = None
    host: str | None = None
    uri: str | None = None  # request-target exactly as sent
    version: str | None = None  # request version, e.g. "HTTP/1.1"; "HTTP/0.9" for a bare request line
    status: int | None = None  # final status; None when no response was seen
    reason: str | None = None
    response_version: str | None = None
    request_header_bytes: int | None = None
    request_body_bytes: int | None = None  # body after chunked framing is removed, before content-decoding
    response_header_bytes: int | None = None
    response_body_bytes: int | None = None
    request_content_type: str | None = None
    response_content_type: str | None = None
    user_agent: str | None = None
    interim_statuses: tuple[int, ...] = ()  # 1xx responses seen before the final one
    tunnel_bytes: int = 0  # bytes after CONNECT/Upgrade that were not parsed as HTTP
    notes: tuple[str, ...] = field(default=())  # flags, names from netrum.counters.NOTES
    # Who called (netrum.http.consumer): the client address, the real client behind trusted proxies, or
    # "id:" + a salted hash of an identity header; never the raw identity. None: the client address.
    consumer: str | None = None

    @property
    def ttfb_ns(self) -> int | None:
        """First response byte minus last request byte (server think time plus network)."""
        if self.response_ts_ns is None or self.request_end_ts_ns is None:
            return None
        return self.response_ts_ns - self.request_end_ts_ns

    @property
    def duration_ns(self) -> int | None:
        """Last response byte minus first request byte (what the client waited)."""
        if self.response_end_ts_ns is None or self.request_ts_ns is None:
            return None
        return self.response_end_ts_ns - self.request_ts_ns
