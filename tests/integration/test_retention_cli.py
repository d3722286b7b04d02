"""`flask privacy retention`: what retention would do now, counted as the run counts it and
changing nothing; with --apply, the run itself."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from leads.extensions import db
from leads.models import EmailMessage, Lead
from leads.patients import cli, privacy
from leads.timeutil import utcnow
from tests.helpers import statements
from tests.integration.test_privacy import _lead

# The rules' SQL (dates, correlated subqueries): run again on PostgreSQL.
pytestmark = pytest.mark.pg

MONTH = timedelta(days=30)


def _one_of_each() -> dict[str, Lead]:
    """A request for each lead rule once 25 months have passed, a booked one that is kept longer,
    and an old email."""
    leads = {
        "closed_leads": _lead(status="closed_lost", full_name="Clara Closedahl"),
        "stalled_leads": _lead(status="routed"),
        "spam_and_duplicates": _lead(status="spam"),
        "erasures": _lead(status="routed", erasure_requested_at=utcnow()),
        "booked": _lead(status="booked"),
    }
    db.session.add(
        EmailMessage(
            idempotency_key="old", template="patient_confirmation", to_address="clara@example.org",
            subject="Hi", body_text="Your details", body_html="", message_id="<m1@x>", status="sent",
        )
    )  # fmt: skip
    db.session.commit()
    return leads


def _counts(output: str) -> dict[str, int]:
    """Each rule's line (two spaces in) by its first two words, and its number."""
    rule_lines = [line for line in output.splitlines() if re.match(r"  \S", line)]
    return {" ".join(line.split()[:2]): int(line.rsplit(": ", 1)[1]) for line in rule_lines}


def _everything() -> dict[str, list[str]]:
    """Every row of every table."""
    tables = db.metadata.sorted_tables
    return {table.name: sorted(map(repr, db.session.execute(table.select()))) for table in tables}


def test_the_preview_counts_each_rule_as_the_run_then_does(app, taxonomy, runner):
    _one_of_each()

    with time_machine.travel(utcnow() + 25 * MONTH, tick=False):
        preview = runner.invoke(args=["privacy", "retention"])
        applied = runner.invoke(args=["privacy", "retention", "--apply"])

    assert preview.exit_code == 0, preview.output
    assert preview.output.startswith("Retention now would act on (a preview: nothing was changed")
    assert _counts(preview.output) == {
        "erasure requests": 1,
        "emails older": 1,
        "closed, withdrawn": 1,
        "open requests": 1,
        "spam and": 1,
    }
    assert "open requests nobody acted on for 24 months, to close and anonymise: 1" in preview.output
    assert applied.exit_code == 0, applied.output
    assert applied.output.startswith("Retention ran:")
    assert _counts(applied.output) == {
        "erasures carried": 1,
        "emails whose": 1,
        "ended requests": 1,
        "open requests": 1,
        "spam and": 1,
    }
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead).filter_by(anonymised_at=None)) == 1


def test_the_preview_changes_nothing_and_writes_nothing(app, taxonomy, runner):
    _one_of_each()
    before = _everything()

    with time_machine.travel(utcnow() + 25 * MONTH, tick=False), statements() as sent:
        result = runner.invoke(args=["privacy", "retention", "--list"])

    assert result.exit_code == 0, result.output
    assert "erasure requests due" in result.output
    db.session.expire_all()
    assert _everything() == before
    assert any(statement.startswith("SELECT count(*)") for statement in sent)
    assert [s for s in sent if re.match(r"(INSERT|UPDATE|DELETE)\b", s) or "FOR UPDATE" in s] == []


def test_the_list_shows_references_only_and_says_how_many_more(app, taxonomy, runner, monkeypatch):
    monkeypatch.setattr(cli, "LISTED", 2)
    leads = _one_of_each()
    spam = [leads["spam_and_duplicates"], *(_lead(status="spam") for _ in range(2))]

    with time_machine.travel(utcnow() + 25 * MONTH, tick=False):
        result = runner.invoke(args=["privacy", "retention", "--list"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  spam and duplicates"))
    assert lines[at + 1 : at + 3] == [f"    {spam[0].reference} {spam[1].reference}", "    and 1 more"]
    for rule in ("erasures", "closed_leads", "stalled_leads"):
        assert f"    {leads[rule].reference}" in lines
    assert leads["booked"].reference not in result.output
    assert "Clara" not in result.output and "@" not in result.output


def test_the_preview_says_when_due_erasures_are_left_to_an_admin(app, taxonomy, runner):
    app.config["ERASURE_AUTOMATIC_WHEN_DUE"] = False
    _lead(erasure_requested_at=utcnow() - 31 * timedelta(days=1))

    preview = runner.invoke(args=["privacy", "retention"])
    applied = runner.invoke(args=["privacy", "retention", "--apply"])

    assert "erasure requests due (28 days after the patient asked), left to an admin" in preview.output
    assert "ERASURE_AUTOMATIC_WHEN_DUE is off): 1" in preview.output
    assert "erasures carried out: 0" in applied.output


def test_the_preview_says_when_a_run_would_stop_at_its_most(app, taxonomy, runner, monkeypatch):
    monkeypatch.setattr(privacy, "MOST_PER_RUN", 1)
    for _ in range(2):
        _lead(status="spam", updated_at=utcnow() - timedelta(days=31))

    result = runner.invoke(args=["privacy", "retention"])

    spam = "spam and duplicates untouched for 30 days, to anonymise: 2\n"
    assert spam + "    a run does at most 1; the next runs go on" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--aply"], "No such option '--aply'. Did you mean '--apply'?"),
        (["--apply", "--list"], "--list goes with the preview; --apply shows what the run did."),
        (["now"], "Got unexpected extra argument (now)"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_runs(app, taxonomy, runner, args, message):
    lead = _lead(status="spam", updated_at=utcnow() - timedelta(days=31))

    result = runner.invoke(args=["privacy", "retention", *args])

    assert result.exit_code == 2 and message in result.output
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).anonymised_at is None
