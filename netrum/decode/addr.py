"""Printable IP addresses from packed bytes (IPv4 dotted quad, IPv6 compressed as RFC 5952 / ipaddress)."""
from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65536)
def addr_to_str(packed: bytes) -> str:
    """``b"\\x7f\\x00\\x00\\x01"`` -> ``"127.0.0.1"``; 16 bytes -> compressed IPv6; anything else -> hex."""
    if len(packed) == 4:
        return f"{packed[0]}.{packed[1]}.{packed[2]}.{packed[3]}"
    if len(packed) == 16:
        return str(ipaddress.IPv6Address(packed))
    return packed.hex()
