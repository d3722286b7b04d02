"""REDIS_URL may name Redis or Sentinel nodes: each user of Redis reads it the same way."""

import pytest

from config import ConfigError, limiter_storage_uri, sentinel_addresses
from workers.broker import transport_for

SENTINELS = "sentinel://:s3cret@10.0.0.1:26379;sentinel://:s3cret@10.0.0.2:26380;sentinel://:s3cret@10.0.0.3"


def test_a_sentinel_url_names_every_node_with_the_default_port():
    assert sentinel_addresses(SENTINELS) == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379)]


def test_a_plain_redis_url_is_no_sentinel():
    assert sentinel_addresses("redis://:pw@127.0.0.1:6379/0") is None


def test_a_sentinel_address_without_a_host_is_refused_without_showing_the_password():
    with pytest.raises(ConfigError) as refused:
        sentinel_addresses("sentinel://:s3cret@:26379")
    assert "s3cret" not in str(refused.value)


def test_the_rate_limiter_gets_the_limits_package_sentinel_form():
    assert limiter_storage_uri(SENTINELS, "quotes") == (
        "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380,10.0.0.3:26379/quotes"
    )
    assert limiter_storage_uri("redis://127.0.0.1:6379/0", "quotes") == "redis://127.0.0.1:6379/0"


def test_celery_gets_the_transport_with_the_acknowledgement_fix_for_both_kinds():
    assert transport_for(SENTINELS) == "workers.broker:SentinelTransport"
    assert transport_for("redis://127.0.0.1:6379/0") == "workers.broker:RedisTransport"
    assert transport_for("rediss://127.0.0.1:6379/0") is None
