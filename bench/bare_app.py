"""The baselines: a bare Flask app (a form page; one INSERT per POST) and a bare Celery task (read
the row, send one email over a new SMTP connection), run with the same gunicorn and Celery settings
as the project. BARE_DATABASE_URL, BARE_REDIS_URL and BARE_SMTP_PORT say where things are."""

import os
import secrets
import smtplib
from email.message import EmailMessage

import sqlalchemy as sa
from celery import Celery
from flask import Flask, redirect, request

metadata = sa.MetaData()
submissions = sa.Table(
    "bare_submission",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
)

FORM = """<!doctype html><html lang="en"><head><title>Bare form</title></head><body>
<form method="post" action="/form"><input type="hidden" name="token" value="{token}">
<label>Email <input name="email"></label><label>Details <textarea name="details"></textarea></label>
<button>Send</button></form></body></html>"""


def _engine() -> sa.Engine:
    url = os.environ["BARE_DATABASE_URL"]
    engine = sa.create_engine(url)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_connection, record):
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=10000")

    return engine


app = Flask(__name__)
engine = _engine() if "BARE_DATABASE_URL" in os.environ else None
celery_app = Celery("bare", broker=os.environ.get("BARE_REDIS_URL"))
celery_app.conf.update(task_ignore_result=True, task_acks_late=True, worker_prefetch_multiplier=1)


def _insert() -> int:
    with engine.begin() as connection:
        return connection.execute(
            submissions.insert().values(email=request.form["email"], details=request.form["details"])
        ).inserted_primary_key[0]


@app.get("/ping")
def ping():
    return {"status": "ok"}


@app.get("/form")
def form():
    return FORM.format(token=secrets.token_urlsafe(16))


@app.post("/form")
def store():
    _insert()
    return redirect("/thanks", code=303)


@app.post("/lead")
def store_and_publish():
    """Insert, commit, publish: the least a stored request must do before its email can go."""
    row_id = _insert()
    send.delay(row_id)
    return redirect("/thanks", code=303)


@celery_app.task(name="bare.send")
def send(row_id: int) -> None:
    with engine.connect() as connection:
        query = sa.select(submissions.c.email).where(submissions.c.id == row_id)
        email = connection.execute(query).scalar_one()
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "New request", "bench@localhost", email
    message["Message-ID"] = f"<bare-{row_id}@bench>"
    message.set_content("A new request.")
    with smtplib.SMTP("127.0.0.1", int(os.environ["BARE_SMTP_PORT"]), timeout=20) as smtp:
        smtp.send_message(message)


@celery_app.task(name="bare.noop")
def noop() -> None:
    """Celery's own cost: a task that does nothing."""
