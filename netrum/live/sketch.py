"""A mergeable latency sketch: log-bucket histogram with a relative-accuracy guarantee (DDSketch).

Masson, Rim, Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error Guarantees"
(VLDB 2019). A positive value x goes to bucket ``i = ceil(log_gamma(x))`` with ``gamma = (1+a)/(1-a)``;
bucket i covers (gamma^(i-1), gamma^i] and is represented by ``2 gamma^i / (gamma + 1)``, which is within
relative error ``a`` of every value in the bucket. Hence:

- **accuracy**: ``quantile(q)`` returns a value within relative error ``a`` (default 1%) of the value of
  rank ``floor(q * (n - 1))`` (0-based) of the data: numpy's ``method="lower"``; so it also lies within
  ``[x_lo * (1 - a), x_hi * (1 + a)]`` of the two ranks numpy's default linear interpolation uses. Values
  <= 0 are counted exactly in a zero bucket.
- **merges are exact**: two sketches with the same ``a`` merge by adding bucket counts; the merged sketch
  is the sketch of the union.
- **bounded**: at most ``max_buckets`` buckets (default 2048; with a = 1% a range of 1e-9 to 1e8 needs
  about 1,700); beyond it the lowest buckets are collapsed into one (the guarantee then holds for the
  quantiles above the collapsed ones, as in DDSketch's collapsing store).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

DEFAULT_ALPHA = 0.01
DEFAULT_MAX_BUCKETS = 2048


class LogSketch:
    __slots__ = (
        "_inv_log_gamma",
        "alpha",
        "buckets",
        "collapsed",
        "count",
        "gamma",
        "max",
        "max_buckets",
        "min",
        "sum",
        "zero",
    )

    def __init__(self, alpha: float = DEFAULT_ALPHA, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha = alpha
        self.gamma = (1 + alpha) / (1 - alpha)
        self._inv_log_gamma = 1.0 / math.log(self.gamma)
        self.max_buckets = max_buckets
        self.buckets: dict[int, int] = {}
        self.zero = 0  # values <= 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.collapsed = 0  # times the lowest buckets were merged to respect max_buckets

    def add(self, x: float) -> None:
        self.count += 1
        self.sum += x
        self.min = min(self.min, x)
        self.max = max(self.max, x)
        if x <= 0.0:
            self.zero += 1
            return
        i = math.ceil(math.log(x) * self._inv_log_gamma)
        b = self.buckets
        b[i] = b.get(i, 0) + 1
        if len(b) > self.max_buckets:
            self._collapse()

    def extend(self, values: Iterable[float]) -> None:
        for x in values:
            self.add(x)

    def _collapse(self) -> None:
        """Merge the two lowest buckets into the higher one until within max_buckets."""
        b = self.buckets
        keys = sorted(b)
        while len(b) > self.max_buckets:
            lo = keys.pop(0)
            b[keys[0]] += b.pop(lo)
            self.collapsed += 1

    def merge(self, other: LogSketch) -> None:
        if other.alpha != self.alpha:
            raise ValueError("cannot merge sketches of different accuracy")
        b = self.buckets
        for i, n in other.buckets.items():
            b[i] = b.get(i, 0) + n
        self.zero += other.zero
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.collapsed += other.collapsed
        if len(b) > self.max_buckets:
            self._collapse()

    def copy(self) -> LogSketch:
        s = LogSketch(self.alpha, self.max_buckets)
        s.merge(self)
        return s

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1) within relative error alpha of the value of rank
        floor(q * (count - 1)); None when empty. The exact min and max are returned for q = 0 and 1."""
        if self.count == 0:
            return None
        if q <= 0:
            return self.min
        if q >= 1:
            return self.max
        rank = math.floor(q * (self.count - 1))
        if rank < self.zero:
            return 0.0 if self.min >= 0 else self.min
        seen = self.zero
        g = self.gamma
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen > rank:
                v = 2.0 * g ** i / (g + 1.0)
                # Clamp to the exact extremes: never worse, and exact at the ends.
                return min(max(v, self.min), self.max)
        return self.max  # pragma: no cover - counts always add up

    def __len__(self) -> int:
        return self.count
