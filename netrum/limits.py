"""Every buffer and table in netrum has a named limit; hitting one increments a counter."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECOND_NS = 1_000_000_000


def _limit(default: int, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class Limits:
    # flows/table.py
    max_flows: int = _limit(200_000, "connections tracked at once; the idlest is evicted beyond it")
    flow_idle_timeout_ns: int = _limit(300 * SECOND_NS, "a connection silent this long (packet time) is closed")
    closed_flow_linger_ns: int = _limit(
        5 * SECOND_NS, "a FIN/RST-closed connection is remembered this long to absorb retransmits")
    # flows/reassembly.py
    max_ooo_bytes: int = _limit(2 * 1024 * 1024, "out-of-order bytes buffered per direction")
    max_ooo_segments: int = _limit(2048, "out-of-order segments buffered per direction")
    max_ack_hold_bytes: int = _limit(
        1024 * 1024, "server bytes held until the client stream catches up (ACK rule)")
    # decode
    max_tunnel_depth: int = _limit(4, "nested encapsulations peeled at most")
    max_ip_fragment_datagrams: int = _limit(4096, "IP datagrams being rebuilt from fragments at once")
    ip_fragment_timeout_ns: int = _limit(30 * SECOND_NS, "an incomplete fragmented datagram is dropped after this")
    # http
    max_header_bytes: int = _limit(64 * 1024, "one message head (start line and fields)")
    max_headers: int = _limit(256, "header fields in one message head")
    max_pending_requests: int = _limit(256, "requests waiting for their response on one connection")
    max_hunt_bytes: int = _limit(256 * 1024, "bytes scanned for a start line before a connection is called not-HTTP")
    max_chunk_line_bytes: int = _limit(4096, "one chunk-size line with its extensions")
    max_uri_chars: int = _limit(8192, "request-target characters kept in outputs (longer ones are cut)")


DEFAULT_LIMITS = Limits()
