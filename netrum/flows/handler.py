"""The contract between the flow table and an application analyzer (HttpConnection implements it).

The flow table owns TCP: it decides who is the client, reassembles each direction, and calls these
methods with in-order bytes and the timestamp (integer ns) of the packet that carried them. Lost bytes
arrive as ``*_gap(nbytes)``; the end of a direction as ``*_eof``; ``close`` is called exactly once when
the connection is over (both FINs, RST, idle timeout, eviction or end of capture), after which nothing
else is called. This is Zeek's deliver / undelivered / end-of-stream interface.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from netrum.records import ConnInfo


class ConnHandler(Protocol):
    def client_data(self, data: bytes, ts_ns: int, ack_offset: int = -1) -> None:
        """``ack_offset``: how many bytes of the server's stream (as delivered to this handler) the client
        had acknowledged in the packet that carried ``data``; -1 when unknown. It lets the handler tell
        which request a response can answer when whole responses were lost."""
    def server_data(self, data: bytes, ts_ns: int) -> None: ...
    def client_gap(self, nbytes: int, ts_ns: int) -> None: ...
    def server_gap(self, nbytes: int, ts_ns: int) -> None: ...
    def client_eof(self, ts_ns: int) -> None: ...
    def server_eof(self, ts_ns: int) -> None: ...
    def close(self, ts_ns: int) -> None: ...

    @property
    def done(self) -> bool:
        """True once the handler wants no more bytes (not HTTP, or tunnelled after Upgrade/CONNECT).
        The flow table may then stop reassembling and only count the bytes."""
        ...


# Builds the handler for a new connection once its roles are known.
HandlerFactory = Callable[[ConnInfo], ConnHandler]

# Looks at the first bytes a side sent: +1 an HTTP request start, -1 an HTTP response start, 0 unknown.
StartClassifier = Callable[[bytes], int]
