"""Fixtures: a real Redis, a real SMTP sink, a real Celery worker, and the app on SQLite
(or PostgreSQL with --db=postgresql)."""

import os
import sqlite3
import threading
from contextlib import contextmanager

import pytest

import config
import leads
from leads import create_app
from leads.dev.mailsink import start_sink
from leads.extensions import db, limiter
from leads.intake import forget_taxonomy
from tests.helpers import FreshRequestClient
from tests.pg_cluster import PgCluster
from tests.servers import RedisServer, Worker, free_port


def pytest_addoption(parser):
    parser.addoption(
        "--db",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="database for the tests that touch one (TEST_DATABASE_URL overrides)",
    )


# Fixtures whose tests need their data committed: another process or connection must see it.
COMMITTING_FIXTURES = {"celery_worker", "live_server", "staff_server"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if COMMITTING_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.commits)
    on_postgresql = config.getoption("--db") == "postgresql" or os.environ.get(
        "TEST_DATABASE_URL", ""
    ).startswith("postgresql")
    # Tests about one database's own behaviour are left out of the other's pass, not skipped.
    elsewhere = "sqlite_only" if on_postgresql else "pg_only"
    left_out = [item for item in items if item.get_closest_marker(elsewhere)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker(elsewhere)]


@pytest.fixture(scope="session")
def database_server(request):
    """The run's own PostgreSQL cluster, or None (SQLite, or a server named by TEST_DATABASE_URL)."""
    if os.environ.get("TEST_DATABASE_URL") or request.config.getoption("--db") != "postgresql":
        yield None
        return
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def database_url(database_server, tmp_path_factory):
    """The database for the whole run (migrated by `test_env`)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    if database_server is not None:
        return database_server.url()
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory):
    port = free_port()
    controller, sink = start_sink(tmp_path_factory.mktemp("mail"), port=port)
    sink.port = port
    yield sink
    controller.stop()


@pytest.fixture(scope="session")
def test_env(database_url, redis_server, mail_sink):
    """Environment shared by the app under test and the worker processes it talks to."""
    env = {
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail_sink.port),
        "OUTBOX_GRACE_SECONDS": "0",
        "EMAIL_RETRY_BASE_SECONDS": "1",
        "BASE_URL": "http://127.0.0.1:5000",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    _migrate(database_url)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _migrate(database_url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=database_url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


# The worker listens on its own Redis database, so tests without a worker keep their tasks.
WORKER_REDIS_DB = 1


@pytest.fixture(scope="session")
def _apps(test_env):
    """The apps of the run, built once each: by default one, plus one publishing to the worker."""
    # A session joined to a connection that is already in a transaction works in a savepoint.
    db.session.session_factory.configure(join_transaction_mode="create_savepoint")
    built = {}

    def app_for(**overrides):
        key = tuple(sorted(overrides.items()))
        if key not in built:
            app = create_app(config.TestingConfig, **overrides)
            # Every test-client request starts with an empty `g`, as each request does in production.
            app.test_client_class = FreshRequestClient
            # The limiter is one object that every create_app reconfigures: keep this app's state.
            built[key] = (app, dict(app.config), dict(vars(limiter)))
        return built[key]

    return app_for


@pytest.fixture
def app(request, _apps, redis_server, mail_sink):
    """The app in an app context, the same app object for the whole run.

    The test's data lives in a transaction rolled back at its end (the app's commits release
    savepoints inside it), unless the test is marked `commits` (a worker, a live server or another
    connection must see its data): then it commits for real and every table is emptied afterwards.
    """
    overrides = {}
    if "celery_worker" in request.fixturenames:
        overrides["REDIS_URL"] = redis_server.url_for(WORKER_REDIS_DB)
    app, settings, limiter_state = _apps(**overrides)
    vars(limiter).update(limiter_state)
    # Current too: an app a test built since (create_app makes its Celery app the thread's
    # current one) would otherwise run every task called in later tests, on its own database.
    app.extensions["celery"].set_default()
    app.extensions["celery"].set_current()
    with app.app_context():
        forget_taxonomy()  # rolled-back tests leave no taxonomy behind, so neither may the cache
        if request.node.get_closest_marker("commits"):
            try:
                yield app
            finally:
                db.session.remove()
                _empty_tables()
        else:
            with _rolled_back_at_the_end():
                yield app
    app.config.clear()
    app.config.update(settings)
    if redis_server.process is None:
        redis_server.start()
    for path in mail_sink.messages():
        path.unlink()
    mail_sink.reset()


@contextmanager
def _rolled_back_at_the_end():
    """Point the app's engine at one connection inside a transaction, rolled back at the end."""
    engines = db.engines
    engine = engines[None]
    connection = engine.connect()
    transaction = connection.begin()  # on SQLite, the begin hook makes it BEGIN IMMEDIATE
    engines[None] = connection
    try:
        yield
    finally:
        db.session.remove()
        engines[None] = engine
        if transaction.is_active:
            transaction.rollback()
        connection.close()


def _empty_tables() -> None:
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())
    db.engine.dispose()


@pytest.fixture
def database_outage(app, database_server, monkeypatch):
    """`database_outage(seconds)` takes the app's database away now and brings it back after
    `seconds`, in the background; the thread that brings it back is returned. On SQLite another
    connection holds the write lock (and each writer gives up waiting for it after a tenth of a
    second instead of SQLITE_BUSY_MS); on PostgreSQL the server is stopped, then started again."""
    dialect, path = db.engine.dialect.name, db.engine.url.database
    if dialect != "sqlite" and database_server is None:
        pytest.skip("stopping PostgreSQL needs the run's own cluster, not TEST_DATABASE_URL")
    monkeypatch.setattr(leads, "SQLITE_BUSY_MS", 100)
    outages: list[threading.Thread] = []

    def outage(seconds: float) -> threading.Thread:
        started = threading.Event()

        def hold_the_write_lock() -> None:
            connection = sqlite3.connect(path, isolation_level=None)
            try:
                connection.execute("BEGIN IMMEDIATE")
                started.set()
                threading.Event().wait(seconds)
                connection.execute("COMMIT")
            finally:
                connection.close()

        def stop_the_server() -> None:
            database_server.stop_server()
            started.set()
            threading.Event().wait(seconds)
            database_server.start_server()

        thread = threading.Thread(target=hold_the_write_lock if dialect == "sqlite" else stop_the_server)
        thread.start()
        outages.append(thread)
        assert started.wait(timeout=30), "the outage did not begin"
        return thread

    yield outage
    for thread in outages:  # the database is back for the next test, whatever became of this one
        thread.join()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def taxonomy(app):
    from leads.dev import seed

    seed.load_taxonomy()
    db.session.commit()


@pytest.fixture(scope="session")
def celery_worker(test_env, redis_server, tmp_path_factory):
    """A worker process shared by the run; tests that use it publish to its Redis database."""
    env = {**test_env, "REDIS_URL": redis_server.url_for(WORKER_REDIS_DB)}
    worker = Worker(env, tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()
