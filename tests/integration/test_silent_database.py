"""A PostgreSQL server that accepts connections and never answers (a hung server, or a proxy in
front of a dead one) fails a connection within DATABASE_CONNECT_TIMEOUT with a clear error, and
a patient gets the app's 503 page from it, never a request that hangs until gunicorn kills it."""

import socket
import threading
import time

import pytest
import sqlalchemy as sa

from config import ProductionConfig, engine_options, normalise_database_url
from leads import create_app
from tests.unit.test_config import PRODUCTION_ENV


@pytest.fixture
def silent_server():
    """A listener on loopback that takes every connection and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []

    def accept_forever():
        try:
            while True:
                held.append(listener.accept()[0])
        except OSError:  # the listener was closed
            pass

    threading.Thread(target=accept_forever, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for connection in held:
        connection.close()


def test_connecting_to_a_server_that_never_answers_fails_within_the_connect_timeout(silent_server):
    url = normalise_database_url(f"postgresql://quotes:secret@127.0.0.1:{silent_server}/quotes")
    engine = sa.create_engine(url, **engine_options(url, connect_timeout=2))
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="connection timeout expired"):
        engine.connect()
    assert 1.5 < time.monotonic() - started < 5
    engine.dispose()


def test_a_patient_gets_the_503_page_when_the_database_stops_answering(silent_server, monkeypatch):
    for key, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://quotes:secret@127.0.0.1:{silent_server}/quotes")
    monkeypatch.setenv("DATABASE_CONNECT_TIMEOUT", "2")
    app = create_app(ProductionConfig)
    started = time.monotonic()
    response = app.test_client().get("/quote")
    assert response.status_code == 503
    assert "The service is busy for a moment" in response.get_data(as_text=True)
    assert time.monotonic() - started < 5  # gunicorn would kill the worker at 30 s: a proxy's 502
