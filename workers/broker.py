"""kombu's Redis transports, made to survive acknowledging a task after a Redis outage, and to
publish without building a Redis client per message.

With acks-late, a task that finishes while Redis is down is acknowledged on its old channel after
the worker has closed that connection (`Connection.collect` sets the transport's `client` to
None). When the channel must make a new connection pool for that acknowledgement, kombu 5.7
reads `transport.client.hostname` and raises AttributeError, which Celery does not expect from an
acknowledgement: the worker stops with "Unrecoverable error". Raising the connection error that
Celery does expect instead logs "Couldn't ack" and carries on; the task stays unacknowledged in
Redis and comes back after the visibility timeout, and every task is idempotent.
"""

from contextlib import contextmanager
from urllib.parse import urlparse

import redis
from kombu.transport import redis as kombu_redis

CLOSED = "the broker connection this channel belonged to was closed"


def _closed(channel) -> bool:
    transport = channel.connection
    return transport is None or transport.client is None


class _OneClient:
    """kombu builds a new redis-py client for every message it publishes (and every other
    command it sends outside its event loop), which costs more than sending the message. A
    client is thread-safe and only borrows connections from its pool, so each channel keeps one
    for as long as its pool lives; a channel that makes a new pool (after an outage) gets a new
    client with it."""

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        pool = self.pool
        kept = getattr(self, "_kept_client", None)
        if kept is None or kept.connection_pool is not pool:
            kept = self._kept_client = self._create_client()
        yield kept


class Channel(_OneClient, kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        if _closed(self):
            raise redis.exceptions.ConnectionError(CLOSED)
        return super()._connparams(asynchronous=asynchronous)


class SentinelChannel(_OneClient, kombu_redis.SentinelChannel):
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
