"""Statements, transactions and commits of one request to the quote form on SQLite, against the
bare minimum of one INSERT per stored request. Counts, not timings: they do not depend on load."""

import itertools
import time
from collections import Counter

import sqlalchemy as sa
from _support import bench_app
from bench_intake import ANSWERS

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

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _count(conn, cursor, statement, parameters, context, executemany):
            seen[_kind(statement)] += 1

        @sa.event.listens_for(engine, "commit")
        def _commit(conn):
            seen["COMMIT"] += 1

        client = app.test_client()
        numbers = itertools.count()

        def trace(label, call):
            call()  # warm caches first
            seen.clear()
            call()
            statements = sum(n for kind, n in seen.items() if kind != "COMMIT")
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
