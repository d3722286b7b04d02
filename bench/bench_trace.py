"""Statements, transactions and commits of one request to the quote form on SQLite, as SQLite
itself traces them (BEGINs and PRAGMAs included); the bare minimum of a stored request is one
BEGIN, one INSERT and one COMMIT. Counts, not timings: they do not depend on load."""

import itertools
import time
from collections import Counter

import sqlalchemy as sa
from _support import bench_app
from loadgen import ANSWERS

from leads.dev import seed
from leads.extensions import db
from leads.intake import form_token


def _kind(statement: str) -> str:
    head = statement.lstrip().split(None, 2)
    word = head[0].upper() if head else ""
    if word == "BEGIN":
        return " ".join(head[:2]).upper().rstrip(";")
    return word


def main() -> None:
    with bench_app("bench-trace-", pushed=False, QUOTE_RATE_LIMIT="1000000 per minute") as (app, _redis):
        with app.app_context():
            seed.load_taxonomy()
            db.session.commit()
            engine = db.engine
        seen: Counter = Counter()

        engine.dispose()

        @sa.event.listens_for(engine, "connect")
        def _trace(dbapi_connection, record):
            # SQLite's own trace: every statement it runs, BEGINs included.
            dbapi_connection.set_trace_callback(lambda statement: seen.update([_kind(statement)]))

        client = app.test_client()
        numbers = itertools.count()

        def trace(label, call):
            call()  # warm caches first
            seen.clear()
            call()
            statements = sum(seen.values())
            detail = ", ".join(f"{kind} {n}" for kind, n in sorted(seen.items()))
            print(f"{label:<34} {statements:>3} statements   {detail}")

        def post():
            token = form_token.issue(
                app.config["SECRET_KEY"], consent_version="2026-11-v1", now=time.time() - 10
            )
            number = next(numbers)
            data = {**ANSWERS, "email": f"patient{number}@example.org", "phone": f"+45{20100000 + number}"}
            assert client.post("/quote", data={**data, "form_token": token}).status_code == 303

        trace("GET /quote", lambda: client.get("/quote"))
        trace("POST /quote (stored, published)", post)
        trace("GET /healthz", lambda: client.get("/healthz"))


if __name__ == "__main__":
    main()
