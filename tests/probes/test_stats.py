"""Bootstrap intervals (probes.stats) on hand-computed cases and against a known distribution."""

from __future__ import annotations

import numpy as np
import pytest

from probes.errors import ElicitError
from probes.stats import bootstrap_ci, mean_ci


def test_two_values_by_hand() -> None:
    # resampled means of [0, 1] are 0, 0.5, 1 with probability 1/4, 1/2, 1/4: the central 95% spans [0, 1]
    assert bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)
    # the central 40% holds only the middle value
    assert bootstrap_ci([0.0, 1.0], confidence=0.4) == (0.5, 0.5)


def test_mean_ci_and_degenerate_inputs() -> None:
    m, lo, hi = mean_ci(np.arange(30.0))
    assert m == 14.5 and lo < 14.5 < hi
    assert bootstrap_ci(np.arange(30.0), seed=1) == bootstrap_ci(np.arange(30.0), seed=1)
    assert bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)  # every resample equal: the point estimate
    assert bootstrap_ci([2.0]) == (2.0, 2.0)
    assert all(np.isnan(x) for x in bootstrap_ci([]))
    assert np.isnan(mean_ci([])[0])


def test_statistic_of_an_index_array() -> None:
    # a ratio of sums resampled over prompt indices: the point lies inside and the bounds in the data's range
    num, den = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 2.0, 2.0])
    lo, hi = bootstrap_ci(np.arange(4), lambda i: num[i].sum() / den[i].sum(), n_resamples=500)
    assert 0.5 <= lo < 1.25 < hi <= 2.0


def test_percentile_interval_covers_the_true_mean_of_normal_data() -> None:
    rng = np.random.default_rng(0)
    trials, mu = 200, 1.0
    covered = 0
    for t in range(trials):
        x = rng.normal(mu, 2.0, size=40)
        lo, hi = bootstrap_ci(x, n_resamples=400, seed=t)
        covered += lo <= mu <= hi
    # nominal 95%; the percentile interval of n = 40 covers a little less (binomial sd 1.5% at 200 trials)
    assert 0.88 <= covered / trials <= 0.99
    # and its width is close to the normal-theory 2 · 1.96 · σ / sqrt(n)
    lo, hi = bootstrap_ci(rng.normal(mu, 2.0, size=400), n_resamples=1000)
    assert hi - lo == pytest.approx(2 * 1.96 * 2.0 / 400**0.5, rel=0.15)


def test_bca_and_a_narrower_confidence() -> None:
    x = np.random.default_rng(1).normal(size=50)
    lo95, hi95 = bootstrap_ci(x, method="BCa", n_resamples=500)
    lo50, hi50 = bootstrap_ci(x, confidence=0.5, method="BCa", n_resamples=500)
    assert lo95 < lo50 < x.mean() < hi50 < hi95


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": np.ones((2, 2))}, "1-D"),
        ({"confidence": 1.5}, "confidence"),
        ({"method": "student"}, "method"),
        ({"n_resamples": 0}, "n_resamples"),
    ],
)
def test_errors_name_the_bad_value(kwargs: dict, match: str) -> None:
    args = {"values": [1.0, 2.0], **kwargs}
    with pytest.raises(ElicitError, match=match):
        bootstrap_ci(**args)
