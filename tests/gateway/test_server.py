"""Process tuning done at the gateway's edge: the collector's threshold."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway import tune_gc


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    try:
        yield before
    finally:
        gc.set_threshold(*before)


def test_tune_gc_sets_the_young_generation_and_keeps_the_older_ones(thresholds) -> None:
    _, older, oldest = thresholds
    tune_gc(12_345)
    assert gc.get_threshold() == (12_345, older, oldest)


def test_tune_gc_zero_leaves_the_thresholds_alone(thresholds) -> None:
    gc.set_threshold(777, 11, 12)
    tune_gc(0)
    assert gc.get_threshold() == (777, 11, 12)


def test_tune_gc_refuses_a_negative_threshold(thresholds) -> None:
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        tune_gc(-1)
    assert gc.get_threshold() == thresholds
