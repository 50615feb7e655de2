"""Medians with bootstrap confidence intervals, for noisy energy measurements.

Energy readings of repeated runs are few (≈5) and not normal, so intervals
come from a percentile bootstrap of the median, seeded so a report is
reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_RESAMPLES = 10_000


def median_ci(samples: Sequence[float], level: float = 0.95, seed: int = 0,
              n_resamples: int = N_RESAMPLES) -> dict[str, float | list[float]]:
    """``{"median": m, "ci95": [low, high]}``: the percentile bootstrap interval of the median.

    The interval's key names its level: ``ci95`` at 0.95, ``ci90`` at 0.90.

    >>> median_ci([2.0, 2.0, 2.0])
    {'median': 2.0, 'ci95': [2.0, 2.0]}
    """
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("median_ci needs at least one sample")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    resampled = np.median(x[rng.integers(0, x.size, size=(n_resamples, x.size))], axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    return {"median": float(np.median(x)), ci_key(level): [float(low), float(high)]}


def ci_key(level: float) -> str:
    """``ci95`` for 0.95: the interval's level is in its name, never assumed.

    >>> ci_key(0.9), ci_key(0.975)
    ('ci90', 'ci97.5')
    """
    return f"ci{100 * level:g}"
