"""Window sizes per model: a tumbling window, and a sliding window made of tumbling ones.

A sliding window is never counted separately: it is the exact merge of the closed
tumbling windows it spans (``docs/decisions.md``), so its length and its slide must be
whole numbers of tumbling windows. Sliding windows end on multiples of the slide
(event time since the epoch), like tumbling windows start on multiples of their size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WindowSizes:
    """One model's windows, in ms.

    :param tumbling_ms: tumbling window length (> 0).
    :param sliding_ms: sliding window length, a multiple of ``tumbling_ms``; 0: none.
    :param slide_ms: how far a sliding window advances, a multiple of ``tumbling_ms``
        and at most ``sliding_ms`` (ignored without sliding windows).
    :raises ValueError: sizes that cannot be assembled from tumbling windows, with
        the rule broken.
    """

    tumbling_ms: int
    sliding_ms: int = 0
    slide_ms: int = 0

    def __post_init__(self) -> None:
        if self.tumbling_ms <= 0:
            raise ValueError(f"the tumbling window must be > 0 ms, got {self.tumbling_ms}")
        if self.sliding_ms < 0:
            raise ValueError(f"the sliding window must be >= 0 ms (0: none), got {self.sliding_ms}")
        if not self.sliding_ms:
            return
        if self.sliding_ms % self.tumbling_ms:
            raise ValueError(
                f"the sliding window ({self.sliding_ms} ms) must be a whole number of "
                f"tumbling windows ({self.tumbling_ms} ms)"
            )
        if self.slide_ms <= 0 or self.slide_ms % self.tumbling_ms:
            raise ValueError(
                f"the slide ({self.slide_ms} ms) must be a positive whole number of "
                f"tumbling windows ({self.tumbling_ms} ms)"
            )
        if self.slide_ms > self.sliding_ms:
            raise ValueError(
                f"the slide ({self.slide_ms} ms) must not exceed the sliding window "
                f"({self.sliding_ms} ms): events would fall between windows"
            )

    @property
    def parts(self) -> int:
        """Tumbling windows per sliding window (0 without sliding windows)."""
        return self.sliding_ms // self.tumbling_ms

    def start(self, time_ms: int) -> int:
        """Start of the tumbling window holding ``time_ms``."""
        return time_ms - time_ms % self.tumbling_ms

    def ends_sliding(self, end_ms: int) -> bool:
        """Whether a sliding window ends where a tumbling window ending at ``end_ms`` does."""
        return bool(self.sliding_ms) and end_ms % self.slide_ms == 0

    def frontier(self, watermark_ms: int) -> int:
        """Oldest tumbling start a future sliding window can still need, at this watermark.

        Tumbling windows that close from now on end at ``start(watermark) + tumbling``
        or later; a sliding window ending there begins ``sliding`` earlier.
        """
        return self.start(watermark_ms) + self.tumbling_ms - self.sliding_ms


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Window sizes of every model: ``default`` unless ``per_model`` names the model."""

    default: WindowSizes
    per_model: Mapping[str, WindowSizes] = field(default_factory=dict)

    def sizes(self, model: str) -> WindowSizes:
        """The model's sizes."""
        return self.per_model.get(model, self.default)

    @classmethod
    def tumbling_only(cls, size_ms: int) -> WindowPlan:
        """Every model: tumbling windows of ``size_ms``, no sliding windows."""
        return cls(WindowSizes(size_ms))
