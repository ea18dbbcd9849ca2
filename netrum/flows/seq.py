"""32-bit TCP sequence-number arithmetic (RFC 9293 section 3.4: comparisons are modulo 2**32)."""
from __future__ import annotations

SEQ_MOD = 1 << 32
SEQ_MASK = SEQ_MOD - 1
SEQ_HALF = 1 << 31


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in sequence space, in [-2**31, 2**31) (RFC 9293 section 3.4)."""
    return ((a - b + SEQ_HALF) & SEQ_MASK) - SEQ_HALF


def seq_add(a: int, n: int) -> int:
    """``a + n`` wrapped to 32 bits."""
    return (a + n) & SEQ_MASK


def seq_lt(a: int, b: int) -> bool:
    """``a`` comes before ``b`` (RFC 9293 section 3.4, "<" on sequence numbers)."""
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    return seq_diff(a, b) <= 0
