"""The Flask application factory, made of small register_* steps."""

import logging
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from dotenv import load_dotenv
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

import workers  # a module import: workers/ reads task names from leads.messaging
from config import BASE_DIR, Config, ConfigError, config_for, engine_options, limiter_storage_uri
from leads.auth import bp as auth_bp
from leads.auth import sessions
from leads.auth import views as auth_views
from leads.cli import register_commands
from leads.connections import check_postgresql_connections, limit_statements
from leads.directory import bp as directory_bp
from leads.errors import register_error_handlers
from leads.extensions import (
    csrf,
    db,
    durable_commits,
    guard_read_only_requests,
    limiter,
    login_manager,
    migrate,
    unit_of_work_writes,
)
from leads.health import bp as health_bp
from leads.i18n import DEFAULT_LANGUAGE, STAFF_LANGUAGES, register_i18n
from leads.ids import IdConverter
from leads.intake import taxonomy as intake_taxonomy
from leads.intake.views import bp as public_bp
from leads.messaging import outbox
from leads.patients.views import bp as self_service_bp
from leads.quotes.rules import RatesError, parse_rates
from leads.routing.views import bp as provider_bp
from leads.staff import bp as staff_bp


def create_app(config_class: type[Config] | None = None, **overrides) -> Flask:
    """Build the app for `config_class` (by default the one APP_ENV names)."""
    if config_class is None:
        if os.environ.get("APP_ENV") == "development":
            load_dotenv(BASE_DIR / ".env", override=False)
        config_class = config_for(os.environ.get("APP_ENV"))
    config = config_class()
    for key, value in overrides.items():
        setattr(config, key, value)
    config.validate()

    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "leads" / "static"),
    )
    app.config.from_object(config)
    register_currency_rates(app)
    register_logging(app)
    register_proxy_fix(app)
    register_extensions(app)
    register_i18n(app, str(BASE_DIR / "translations"))
    check_coordinator_language(app)
    register_url_converters(app)
    register_blueprints(app)
    register_security_headers(app)
    register_errors(app)
    register_cli(app)
    register_celery(app)
    return app


@contextmanager
def stopping_on_config_error() -> Iterator[None]:
    """In the processes an operator starts (gunicorn, `flask`, Celery): a missing or wrong setting
    stops the process with a one-line message naming it, not a traceback to read through."""
    try:
        yield
    except ConfigError as exc:
        raise SystemExit(f"Configuration error: {exc}") from None


def create_app_or_exit() -> Flask:
    """create_app() for an entry point (wsgi.py, workers/worker.py, gunicorn.conf.py)."""
    with stopping_on_config_error():
        return create_app()


def register_currency_rates(app: Flask) -> None:
    """Read CURRENCY_RATES once; a value that cannot be read stops the app with a ConfigError."""
    try:
        app.extensions["currency_rates"] = parse_rates(app.config["CURRENCY_RATES"])
    except RatesError as exc:
        raise ConfigError(str(exc)) from None


def check_coordinator_language(app: Flask) -> None:
    """The coordinators' mailbox reads English or Danish; anything else stops the app with a ConfigError."""
    language = app.config.get("COORDINATOR_EMAIL_LANGUAGE", DEFAULT_LANGUAGE)
    if language not in STAFF_LANGUAGES:
        raise ConfigError(
            f"COORDINATOR_EMAIL_LANGUAGE must be one of {', '.join(STAFF_LANGUAGES)}, not {language!r}"
        )


def register_logging(app: Flask) -> None:
    if not app.debug and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register_proxy_fix(app: Flask) -> None:
    """Behind TRUSTED_PROXY_COUNT proxies, take the client address from X-Forwarded-For.

    Per-client rate limits would otherwise see every patient as the proxy.
    """
    hops = app.config.get("TRUSTED_PROXY_COUNT", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_extensions(app: Flask) -> None:
    app.config.setdefault(
        "RATELIMIT_STORAGE_URI",
        limiter_storage_uri(app.config["REDIS_URL"], app.config["REDIS_SENTINEL_MASTER"]),
    )
    # A Redis outage must never become an error for a patient: fall back to memory.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5})
    app.session_interface = sessions.SessionCookies()
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"],
        connect_timeout=app.config["DATABASE_CONNECT_TIMEOUT"],
        tcp_timeout=app.config["DATABASE_TCP_TIMEOUT"],
    )
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _configure_sqlite(db.engine)
        elif db.engine.dialect.name == "postgresql":
            _configure_postgresql(db.engine)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    # To the sign-in page and back; the message in the reader's language, announced as what kept
    # them from the page they asked for.
    login_manager.unauthorized_handler(auth_views.sign_in_first)
    # Not "strong": it trusts a client-supplied X-Forwarded-For (see leads.auth.sessions).
    login_manager.session_protection = None
    login_manager.user_loader(sessions.load_user)
    limiter.init_app(app)
    outbox.register_outbox_hooks()
    guard_read_only_requests()
    intake_taxonomy.register_taxonomy_cache()


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL, foreign keys and one writer at a time: SQLite serves several processes in development."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None  # let the begin hook below open transactions
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        _set_synchronous(connection.connection, "FULL" if durable_commits() else "NORMAL")
        # A writer takes the write lock up front (IMMEDIATE), so two writers wait instead of
        # deadlocking on a lock upgrade; a reader's plain BEGIN never waits on a writer (WAL).
        if unit_of_work_writes():
            _take_write_lock(connection.connection.dbapi_connection)
        else:
            connection.exec_driver_sql("BEGIN")


SQLITE_BUSY_MS = 10_000


def _set_synchronous(pooled_connection, level: str) -> None:
    """FULL (every commit reaches the disk; the default) or NORMAL (a commit reaches the disk with
    the next FULL one or the next checkpoint): set between transactions, only when it changes."""
    if pooled_connection.info.get("synchronous", "FULL") != level:
        pooled_connection.dbapi_connection.execute(f"PRAGMA synchronous={level}")
        pooled_connection.info["synchronous"] = level


def _configure_postgresql(engine: sa.Engine) -> None:
    check_postgresql_connections(engine)
    limit_statements(engine)  # after the check: on a connection known to be alive

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        if not durable_commits():
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def _take_write_lock(dbapi_connection) -> None:
    """BEGIN IMMEDIATE, tried again every fraction of a millisecond for up to SQLITE_BUSY_MS.

    SQLite's own busy handler sleeps up to 100 ms between tries, so under load the lock would sit
    idle while writers queue; this loop hands it on within a millisecond.
    """
    deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    # As SQLAlchemy reports any database error: callers retry or answer 503 on it.
                    raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                time.sleep(random.uniform(0.0002, 0.001))
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")


def register_url_converters(app: Flask) -> None:
    """Before any route is added: every `<int:…>` of every blueprint is an id."""
    app.url_map.converters["int"] = IdConverter


def register_blueprints(app: Flask) -> None:

    app.register_blueprint(health_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(directory_bp)
    app.register_blueprint(provider_bp)
    app.register_blueprint(self_service_bp)
    app.register_blueprint(staff_bp)


# Pages with staff, patient or provider data, or a sign-in form: never kept by a browser or proxy cache.
NO_STORE_BLUEPRINTS = frozenset({"auth", "staff", "directory", "provider", "self_service"})


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def _security_headers(response):
        headers = response.headers
        if request.blueprint in NO_STORE_BLUEPRINTS or request.path.startswith("/staff"):
            headers["Cache-Control"] = "no-store"
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
        )
        if app.config.get("SESSION_COOKIE_SECURE"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


def register_errors(app: Flask) -> None:

    register_error_handlers(app)


def register_cli(app: Flask) -> None:

    register_commands(app)


def register_celery(app: Flask) -> None:

    workers.celery_init_app(app)
