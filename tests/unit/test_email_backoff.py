"""Email retry back-off on its own: exponential, jittered, capped."""

from datetime import timedelta

import pytest

from leads.messaging.email import backoff


@pytest.mark.parametrize("attempts", [1, 2, 5, 12, 30])
def test_backoff_grows_exponentially_with_jitter_and_is_capped_at_an_hour(attempts):
    delays = [backoff(attempts, 30) for _ in range(50)]
    ceiling = min(30 * 2 ** (attempts - 1), 3600)
    assert all(timedelta(seconds=ceiling / 2) <= d <= timedelta(seconds=ceiling) for d in delays)
    assert len(set(delays)) > 1
