"""Sticky, monotone canary routing."""

from __future__ import annotations

import pytest

from serving.rollout import choose_variant, route_point

KEYS = [f"entity-{i}" for i in range(20_000)]


def test_the_same_key_always_gets_the_same_variant() -> None:
    first = [choose_variant(k, 0.3) for k in KEYS[:500]]
    assert first == [choose_variant(k, 0.3) for k in KEYS[:500]]


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5, 0.9])
def test_the_canary_gets_its_share(share: float) -> None:
    canary = sum(choose_variant(k, share) == "canary" for k in KEYS)
    assert abs(canary / len(KEYS) - share) < 0.015


def test_zero_and_full_share() -> None:
    assert {choose_variant(k, 0.0) for k in KEYS[:2000]} == {"baseline"}
    assert {choose_variant(k, 1.0) for k in KEYS[:2000]} == {"canary"}


def test_raising_the_share_only_moves_keys_to_the_canary() -> None:
    at_10 = {k for k in KEYS if choose_variant(k, 0.1) == "canary"}
    at_40 = {k for k in KEYS if choose_variant(k, 0.4) == "canary"}
    assert at_10 < at_40


def test_points_are_in_the_unit_interval() -> None:
    assert all(0.0 <= route_point(k) < 1.0 for k in KEYS[:1000])
