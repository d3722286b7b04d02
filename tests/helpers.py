"""Small helpers the tests share."""

import io
import re
import threading
import time
from collections import Counter
from contextlib import contextmanager
from functools import cache

import flask_babel
import pytest
import sqlalchemy as sa
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.support import Translations
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient

import config
from leads import register_blueprints
from leads.extensions import db


@cache
def blueprint_routes() -> Flask:
    """The URL map the blueprints make, read without building the app (no extensions, no
    database), so tests can be parametrized over routes at collection."""
    routes = Flask("leads")
    routes.config.from_object(config.TestingConfig())  # some blueprints check their settings
    register_blueprints(routes)
    return routes


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s: {getattr(predicate, '__name__', predicate)}")


def count_rows(model, **filters) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).filter_by(**filters))


class FreshRequestClient(FlaskClient):
    """A test client whose every request starts with an empty `g`, as in production.

    The `app` fixture keeps one app context open, and Flask reuses it for test requests, so
    `g` (where Flask-Login caches the signed-in user) would otherwise carry one request's user
    into the next request, even into another client's. For the same reason, when the test commits
    for real, each request starts its own transaction, so that it begins as a request does in
    production (on SQLite a read-only page with a plain BEGIN, any other with BEGIN IMMEDIATE).
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            g.__dict__.clear()
            if isinstance(db.engines[None], sa.Engine):
                db.session.commit()
        return super().open(*args, **kwargs)


def load_demo_providers_reading_english() -> None:
    """The demo directory with every clinic reading English: its link's pages and emails follow
    its notification language, and these tests read them in English (a Danish-reading clinic's
    pages are tested on their own)."""
    from leads.dev import seed
    from leads.models import Provider

    seed.load_demo_providers()
    db.session.execute(sa.update(Provider).values(notification_language="en"))
    db.session.flush()


@contextmanager
def statements():
    """The SQL statements the app sends while the block runs, in order."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


@contextmanager
def statements_sent(prefix: str):
    """(statement, parameters) of each statement starting with `prefix` the app sends while the
    block runs, as sent: to ask the database for its plan (`query_plan`)."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith(prefix):
            seen.append((statement, parameters))

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def query_plan(statement: str, parameters) -> str:
    """The database's plan for a statement as the app sent it, with the few rows a test has."""
    cursor = db.session.connection().connection.cursor()
    if db.engine.dialect.name == "sqlite":
        return " ".join(row[-1] for row in cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters))
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))  # few rows: let the plan show the index
    cursor.execute("EXPLAIN " + statement, parameters)
    return "\n".join(row[0] for row in cursor.fetchall())


@contextmanager
def sqlite_statements():
    """Every statement SQLite runs while the block runs, BEGINs included (a fresh pool)."""
    seen: list[str] = []
    engine = db.engine
    engine.dispose()

    def trace(dbapi_connection, record):
        dbapi_connection.set_trace_callback(lambda statement: seen.append(" ".join(statement.split())))

    sa.event.listen(engine, "connect", trace)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "connect", trace)
        engine.dispose()


def kinds(seen: list[str]) -> Counter:
    return Counter(" ".join(s.split()[:2]) if s.startswith("BEGIN") else s.split()[0] for s in seen)


def at_once(app, action, count: int = 2) -> list:
    """Run `action` in `count` threads that start together, each in an app context of its own
    (its own session and connection, as two workers or two beats); what each returned."""
    results, start = [], threading.Barrier(count)

    def run():
        with app.app_context():
            start.wait()
            results.append(action())
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def lock_order(action) -> list[str]:
    """The tables whose rows `action` locks or updates, in the order it first does so."""
    with statements() as seen:
        action()
    order: list[str] = []
    for text in seen:
        locked = re.search(r"FOR (NO KEY )?UPDATE", text) and re.search(r"\bFROM (\w+)", text)
        updated = re.match(r"UPDATE (\w+)", text)
        table = (locked or updated) and (updated or locked).group(1)
        if table and table not in order:
            order.append(table)
    return order


# What `make messages` extracts (babel.cfg, the Makefile's keywords), pages and Python alike.
_EXTRACTED = (("leads", [("**.py", "python")]), ("templates", [("**.html", "jinja2")]))
_KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}


@cache
def bracketed_catalog(language: str) -> Translations:
    """A catalog of every text marked for translation in the code as it is now, each translated as
    itself in brackets: ⟦Saved %(name)s.⟧. A text a page shows without brackets would never reach
    a translator (an f-string, or gettext of a text built first)."""
    catalog = Catalog(locale=language)
    for folder, methods in _EXTRACTED:
        for _file, _line, message, _comments, context in extract_from_dir(
            str(config.BASE_DIR / folder), methods, keywords=_KEYWORDS
        ):
            if isinstance(message, tuple):
                strings = tuple(f"⟦{text}⟧" for text in message)
                catalog.add(
                    message, strings + strings[-1:] * (catalog.num_plurals - len(strings)), context=context
                )
            else:
                catalog.add(message, f"⟦{message}⟧", context=context)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def read_bracketed(monkeypatch, language: str) -> None:
    """Pages read in `language` take every text from bracketed_catalog instead of its catalog."""
    real = flask_babel.Domain.get_translations

    def get_translations(domain):
        if str(flask_babel.get_locale()) == language:
            return bracketed_catalog(language)
        return real(domain)

    monkeypatch.setattr(flask_babel.Domain, "get_translations", get_translations)


def bracketed(text: str) -> bool:
    """Whether `text` (HTML-escaped or not) is one translated text: ⟦…⟧, placeholders filled."""
    return text.startswith("⟦") and text.endswith("⟧")


@contextmanager
def committed_once_waited_on(app, write):
    """PostgreSQL: `write` runs in a connection of its own and stays uncommitted until another
    connection waits on a lock (the block's insert of the same unique key), then commits; what a
    second admin's request meets when the first one's save lands between its check and its insert.
    """
    written, problems = threading.Event(), []

    def waited_on() -> bool:
        # A connection of its own per look: a transaction sees one snapshot of pg_stat_activity.
        with db.engine.connect() as connection:
            return bool(
                connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
            )

    def run():
        with app.app_context():
            try:
                write()
                db.session.flush()
                written.set()
                deadline = time.monotonic() + 20
                while not waited_on() and time.monotonic() < deadline:
                    time.sleep(0.02)
                db.session.commit()
            except Exception as exc:  # reported in the test's thread
                problems.append(exc)
            finally:
                written.set()
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    written.wait(timeout=20)
    try:
        yield
    finally:
        thread.join(timeout=60)
    assert problems == [], problems
