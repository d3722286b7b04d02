"""kombu's Redis transports, made to survive acknowledging a task after a Redis outage.

With acks-late, a task that finishes while Redis is down is acknowledged on its old channel after
the worker has closed that connection (`Connection.collect` sets the transport's `client` to
None). When the channel must make a new connection pool for that acknowledgement, kombu 5.7
reads `transport.client.hostname` and raises AttributeError, which Celery does not expect from an
acknowledgement: the worker stops with "Unrecoverable error". Raising the connection error that
Celery does expect instead logs "Couldn't ack" and carries on; the task stays unacknowledged in
Redis and comes back after the visibility timeout, and every task is idempotent.
"""

from urllib.parse import urlparse

import redis
from kombu.transport import redis as kombu_redis

CLOSED = "the broker connection this channel belonged to was closed"


def _closed(channel) -> bool:
    transport = channel.connection
    return transport is None or transport.client is None


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        if _closed(self):
            raise redis.exceptions.ConnectionError(CLOSED)
        return super()._connparams(asynchronous=asynchronous)


class SentinelChannel(kombu_redis.SentinelChannel):
    def _connparams(self, asynchronous=False):
        if _closed(self):
            raise redis.exceptions.ConnectionError(CLOSED)
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


# `rediss://` stays kombu's own: naming a transport class would bypass its TLS defaults.
TRANSPORTS = {
    "redis": f"{__name__}:RedisTransport",
    "sentinel": f"{__name__}:SentinelTransport",
}


def transport_for(url: str) -> str | None:
    """The transport class for a broker URL (None: kombu picks one from the scheme)."""
    return TRANSPORTS.get(urlparse(url.split(";", 1)[0]).scheme)
