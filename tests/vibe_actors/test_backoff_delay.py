"""backoff_delay: the one retry formula (supervisor restarts, job retries, webhook redeliveries)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibe_actors import backoff_delay

delays = st.floats(0, 1_000, allow_nan=False)


@given(attempt=st.integers(1, 10**12), initial=delays, extra=delays,
       multiplier=st.floats(1, 10), jitter=st.floats(0, 1), rand=st.floats(0, 0.999999))  # fmt: skip
def test_the_delay_grows_to_its_cap_and_jitter_only_stretches_it(
    attempt, initial, extra, multiplier, jitter, rand
):
    maximum = initial + extra
    bare = backoff_delay(attempt, initial=initial, maximum=maximum, multiplier=multiplier)
    assert 0 <= bare <= maximum  # never overflows, whatever the attempt
    assert backoff_delay(1, initial=initial, maximum=maximum, multiplier=multiplier) == initial
    later = backoff_delay(attempt + 1, initial=initial, maximum=maximum, multiplier=multiplier)
    assert later >= bare
    jittered = backoff_delay(
        attempt, initial=initial, maximum=maximum, multiplier=multiplier, jitter=jitter, rand=rand
    )
    assert bare <= jittered <= bare * (1 + jitter)


@given(attempt=st.integers(1, 60), initial=st.floats(0.001, 10), extra=delays)
def test_without_jitter_it_is_the_bare_exponential(attempt, initial, extra):
    maximum = initial + extra
    expected = min(maximum, initial * 2.0 ** (attempt - 1))
    assert backoff_delay(attempt, initial=initial, maximum=maximum) == pytest.approx(expected)


def test_the_jitter_spreads_delays_that_failed_together():
    spread = {round(backoff_delay(3, initial=1.0, maximum=60.0, jitter=0.5), 6) for _ in range(50)}
    assert len(spread) > 10 and min(spread) >= 4.0 and max(spread) <= 6.0


@pytest.mark.parametrize(
    "arguments",
    [
        {"attempt": 0, "initial": 1, "maximum": 2},
        {"attempt": 1, "initial": -1, "maximum": 2},
        {"attempt": 1, "initial": 3, "maximum": 2},
        {"attempt": 1, "initial": 1, "maximum": 2, "multiplier": 0.5},
        {"attempt": 1, "initial": 1, "maximum": 2, "jitter": -0.1},
        {"attempt": 1, "initial": 1, "maximum": 2, "rand": 1.0},
    ],
)
def test_impossible_arguments_are_refused(arguments):
    attempt = arguments.pop("attempt")
    with pytest.raises(ValueError):
        backoff_delay(attempt, **arguments)
