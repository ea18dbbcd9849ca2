"""LogSketch against exact percentiles (numpy) on random data: every quantile within the stated error."""
from __future__ import annotations

import numpy as np
import pytest

from netrum.live.sketch import LogSketch

QS = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]


def _data(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "lognormal":
        return rng.lognormal(mean=1.0, sigma=2.0, size=n)
    if kind == "uniform":
        return rng.uniform(0.001, 5000.0, size=n)
    if kind == "pareto":
        return (rng.pareto(1.2, size=n) + 1) * 0.05
    return np.concatenate([rng.normal(3.0, 0.2, n // 2).clip(0.01), rng.exponential(400.0, n - n // 2)])


@pytest.mark.parametrize("kind", ["lognormal", "uniform", "pareto", "bimodal"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_relative_error(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = _data(kind, rng, 20_000)
    s = LogSketch(0.01)
    s.extend(values.tolist())
    for q in QS:
        got = s.quantile(q)
        assert got is not None
        lower = float(np.quantile(values, q, method="lower"))  # rank floor(q (n-1)): the guarantee
        assert abs(got - lower) <= 0.01 * lower + 1e-12, (kind, q, got, lower)
        lo, hi = float(np.quantile(values, q, method="lower")), float(np.quantile(values, q, method="higher"))
        assert lo * 0.99 <= got <= hi * 1.01  # so within 1% of the bracket of numpy's linear percentile


def test_merge_is_exact_and_matches_union() -> None:
    rng = np.random.default_rng(7)
    a_vals, b_vals = rng.lognormal(0, 1.5, 5000), rng.lognormal(2, 0.5, 3000)
    a, b, union = LogSketch(), LogSketch(), LogSketch()
    a.extend(a_vals.tolist())
    b.extend(b_vals.tolist())
    union.extend(np.concatenate([a_vals, b_vals]).tolist())
    a.merge(b)
    assert a.buckets == union.buckets and a.count == union.count == 8000
    assert a.min == union.min and a.max == union.max
    for q in QS:
        assert a.quantile(q) == union.quantile(q)


def test_zero_and_negative_values_and_empty() -> None:
    s = LogSketch()
    assert s.quantile(0.5) is None
    s.extend([0.0, 0.0, 0.0, 5.0])
    assert s.quantile(0.5) == 0.0
    assert s.quantile(1.0) == 5.0
    assert s.zero == 3


def test_buckets_bounded() -> None:
    s = LogSketch(0.01, max_buckets=64)
    s.extend([1.1 ** i for i in range(1000)])
    assert len(s.buckets) <= 64 and s.collapsed > 0
    top = s.quantile(0.99)
    exact = float(np.quantile([1.1 ** i for i in range(1000)], 0.99, method="lower"))
    assert top is not None and abs(top - exact) <= 0.01 * exact  # high quantiles keep the guarantee


def test_mismatched_alpha_refused() -> None:
    with pytest.raises(ValueError):
        LogSketch(0.01).merge(LogSketch(0.02))
