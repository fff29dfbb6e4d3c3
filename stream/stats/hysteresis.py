"""Persistence before paging: raise after k flagged windows of n, clear after m clean.

A single flagged window is weak evidence (at a 1 % false-flag rate a model scored every
minute flags about 14 windows a day on noise alone). Requiring k of the last n windows
turns an independent per-window rate p into roughly ``C(n, k) p^k`` per window, and
clearing only after m clean windows in a row stops an alert from flapping.
"""

from __future__ import annotations

from collections import deque


class Hysteresis:
    """Alert state from a stream of per-window flags (river's detector style).

    Parameters
    ----------
    k
        Flagged windows among the last ``n`` that raise the alert.
    n
        Look-back length for raising (``n >= k``).
    m
        Consecutive clean windows that clear a raised alert.

    Examples
    --------
    >>> h = Hysteresis(k=2, n=3, m=2)
    >>> [h.update(flag).drift_detected for flag in [1, 0, 1, 0, 1, 0, 0, 1]]
    [False, False, True, True, True, True, False, False]
    """

    def __init__(self, k: int = 3, n: int = 5, m: int = 3) -> None:
        if not 1 <= k <= n:
            raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        self.k = k
        self.n = n
        self.m = m
        self._recent: deque[bool] = deque(maxlen=n)
        self._clean_run = 0
        self._drift_detected = False

    @property
    def drift_detected(self) -> bool:
        """Whether the alert is raised after the last update."""
        return self._drift_detected

    def update(self, x: bool | int) -> Hysteresis:
        """Feed one window's flag (truthy = flagged)."""
        flagged = bool(x)
        self._recent.append(flagged)
        if self._drift_detected:
            self._clean_run = 0 if flagged else self._clean_run + 1
            if self._clean_run >= self.m:
                self._drift_detected = False
                self._recent.clear()
                self._clean_run = 0
        elif sum(self._recent) >= self.k:
            self._drift_detected = True
            self._clean_run = 0
        return self
