"""A lead's history and status reason in the reader's language: what the system writes is stored
as what it says and its values (`leads.notes`) and worded when shown; what a person typed, and
what was written before, shows as stored; the patient's data export keeps English sentences."""

import html
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.dates import format_date

import config
from leads.extensions import db
from leads.i18n import money
from leads.messaging.email import ERASED_WHILE_SENT, due_email_ids, queue_email
from leads.models import EmailMessage, Lead, LeadEvent, Role
from leads.models.lead import event_values
from leads.notes import SAID, Note, _english, fixed, verbatim
from leads.patients import privacy
from leads.staff import lead_actions
from leads.timeutil import utcnow
from tests.factories import LeadFactory
from tests.helpers import read_bracketed
from tests.quote_support import answers, client_with_own_address
from tests.staff_support import signed_in_client

# The lead page and the intake run on either database.
pytestmark = pytest.mark.pg

PLACEHOLDER = re.compile(r"%\((\w+)\)([sd])")
# A note's key where the code writes one: Note("key", ...) or data {"what": "key", ...}.
WRITTEN = re.compile(r"""\bNote\(\s*["'](\w+)["']|["']what["']:\s*["'](\w+)["']""")


def _notes_shown(page: str) -> list[str]:
    return [html.unescape(note) for note in re.findall(r'<p class="note"[^>]*>(.*?)</p>', page, re.S)]


def _status_reason(page: str) -> str:
    return html.unescape(re.search(r"<dt>⟦Reason for status⟧</dt><dd>(.*?)</dd>", page, re.S)[1])


def _page(client, lead: Lead) -> str:
    return client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)


def test_every_note_the_code_writes_has_its_words():
    """A new kind of note cannot show as raw data: each key the code writes is in SAID, and a
    note SAID does not know is refused as it is written."""
    written = set()
    for path in Path(config.BASE_DIR, "leads").rglob("*.py"):
        written |= {key for match in WRITTEN.findall(path.read_text()) for key in match if key}
    assert len(written) > 50  # the scan finds the notes
    assert written - set(SAID) == set()
    with pytest.raises(ValueError, match="no words"):
        Note("a_kind_nobody_worded")
    with pytest.raises(ValueError, match="no words"):
        Note("spam", reasons=[{"what": "a_reason_nobody_worded"}])


def _sample(key: str) -> dict:
    """Values for each placeholder of `key`'s words: a name for %(…)s, a number for %(…)d."""
    return {name: 3 if kind == "d" else f"Name {name}" for name, kind in PLACEHOLDER.findall(SAID[key])}


def test_a_danish_coordinator_reads_every_kind_of_system_note_through_the_catalogs(
    app, taxonomy, monkeypatch
):
    """Every sentence, and every sentence inside one, comes from the catalogs (⟦…⟧); the values
    (names) go in as they are."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="new")
    db.session.flush()
    sentences = [key for key, said in SAID.items() if isinstance(said, str)]
    for key in sentences:
        lead.add_event("note", actor_type="system", note=Note(key, **_sample(key)))
    db.session.commit()

    shown = _notes_shown(_page(client, lead))
    expected = [f"⟦{SAID[key] % _sample(key)}⟧" for key in sentences]
    assert sorted(shown) == sorted(expected)


def test_values_that_are_notes_dates_prices_statuses_and_reasons_are_worded_too(app, taxonomy, monkeypatch):
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="contacted")
    db.session.flush()
    closed = "This request has been closed, so it is no longer available."  # workflow.sharing_refusal's
    moved = Note("because_moved", status=Note("lead_status", status="closed_lost"))
    written = [
        Note(
            "quote_sent",
            provider="Aarhus Rehab",
            price=Note("price", currency="EUR", low=20000, high=30000),
            until=date(2026, 12, 24),
        ),
        Note("quotes_closed", count=2, why=moved),
        Note(
            "provider_declined", provider="Aarhus Rehab", reason=Note("decline_reason", reason="no_capacity")
        ),
        Note("rerouted_none_left", reason="Aarhus declined", why=fixed(closed)),
        Note(
            "rerouted_none_left",
            reason=Note("no_answer", provider="Odense", days=3),
            why=Note("no_provider", ruled_out=[["already_tried", 2]]),
        ),
        Note("spam", reasons=[{"what": "spam_link_in_name"}, {"what": "spam_phrases", "phrases": "casino"}]),
    ]
    for note in written:
        lead.add_event("note", actor_type="system", note=note)
    db.session.commit()

    low, high = money(20000, "EUR", "da"), money(30000, "EUR", "da")
    assert sorted(_notes_shown(_page(client, lead))) == sorted(
        [
            f"⟦Aarhus Rehab sent a quote: ⟦{low} to {high}⟧, valid until "
            f"{format_date(date(2026, 12, 24), 'long', locale='da')}.⟧",
            "⟦2 open quotes closed: ⟦a coordinator moved the lead to ⟦Closed lost⟧.⟧⟧",
            "⟦Aarhus Rehab declined: ⟦no capacity at the moment⟧.⟧",  # after a colon: its sentence form
            f"⟦No provider left: ⟦{closed}⟧ Reason given: “Aarhus declined”⟧",
            "⟦⟦Odense did not answer within 3 working days.⟧ No provider left: "
            "⟦No provider fits this request. Ruled out: ⟦⟦already had this patient⟧ (2)⟧.⟧⟧",
            "⟦Looks like spam: ⟦the name contains a link⟧; ⟦advertising phrases: casino⟧.⟧",
        ]
    )


@pytest.mark.parametrize(
    ("note", "english"),
    [
        (
            Note("rerouted", reason="Clinic asked us to", names="Odense Rehab"),
            "Sent to: Odense Rehab. Reason given: “Clinic asked us to”",
        ),
        (
            Note(
                "rerouted_none_left", reason="patient prefers Jutland", why=Note("no_provider", ruled_out=[])
            ),
            "No provider left: No provider offers this treatment. Reason given: “patient prefers Jutland”",
        ),
        (
            Note(
                "rerouted",
                reason=Note(
                    "every_address_refused", provider="Aarhus Rehab", answer="550 5.1.1 User unknown"
                ),
                names="Odense Rehab",
            ),
            "Every notification address of Aarhus Rehab refused the email: “550 5.1.1 User unknown”. "
            "Sent to: Odense Rehab.",
        ),
    ],
)
def test_words_someone_typed_are_quoted_as_typed_and_never_run_into_the_next_sentence(
    app, taxonomy, monkeypatch, note, english
):
    """A coordinator's re-route reason, typed without a full stop, or a mail server's answer: each
    quoted as it came, apart from the system's own sentences, in the history and its English."""
    assert note.english == english
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="routed")
    db.session.flush()
    lead.add_event("rerouted", actor_type="system", note=note)
    db.session.commit()
    [shown] = _notes_shown(_page(client, lead))
    for typed in ("“Clinic asked us to”", "“patient prefers Jutland”", "“550 5.1.1 User unknown”"):
        if typed in english:
            assert typed in shown, shown


def test_counted_notes_take_the_plural_form_of_their_count(app, taxonomy, monkeypatch):
    """A count is worded with its own plural form (ngettext), never "assignment(s)": a sentence
    with two counts takes each worded on its own; the data stored before is read as it was, and
    the English sentence the event keeps agrees with its counts."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="contacted")
    db.session.flush()
    moved = Note("because_moved", status=Note("lead_status", status="closed_lost"))
    written = [
        Note("sharing_stopped", ended=1, cancelled=2),
        Note("consent_withdrawn", closed=2, cancelled=1),
        Note("quotes_closed", count=1, why=moved),
    ]
    for note in written:
        lead.add_event("note", actor_type="system", note=note)
    # A row written before, with the data of those days and its "(s)" sentence: worded anew.
    old = lead.add_event("note", actor_type="system", note=Note("quotes_closed", count=3, why=moved))
    old.note = "3 open quote(s) closed: a coordinator moved the lead to Closed lost."
    db.session.commit()

    assert [note.english for note in written] == [
        "1 open assignment closed, 2 unsent provider emails cancelled.",
        "Consent withdrawn: 2 open assignments closed, 1 unsent provider email cancelled.",
        "1 open quote closed: a coordinator moved the lead to Closed lost.",
    ]
    assert written[0].data == {"what": "sharing_stopped", "ended": 1, "cancelled": 2}
    shown = _notes_shown(_page(client, lead))
    assert not any("(s)" in note for note in shown)
    worded_moved = "⟦a coordinator moved the lead to ⟦Closed lost⟧.⟧"
    assert sorted(shown) == sorted(
        [
            "⟦⟦1 open assignment closed⟧, ⟦2 unsent provider emails cancelled⟧.⟧",
            "⟦Consent withdrawn: ⟦2 open assignments closed⟧, ⟦1 unsent provider email cancelled⟧.⟧",
            f"⟦1 open quote closed: {worded_moved}⟧",
            f"⟦3 open quotes closed: {worded_moved}⟧",
        ]
    )


# Every counted sentence: a note for a count, its English words with {n} and {noun}, and the noun's
# singular and plural.
COUNTED = {
    "provider_paused": (
        lambda n: Note("provider_paused", provider="Aarhus", count=n),
        "Aarhus was paused: every one of its notification addresses refused the email about {n} {noun}",
        ("lead", "leads"),
    ),
    "no_answer": (
        lambda n: Note("no_answer", provider="Odense", days=n),
        "Odense did not answer within {n} {noun}.",
        ("working day", "working days"),
    ),
    "duplicate": (
        lambda n: Note("duplicate", reference="Q-ABC123", days=n),
        "Same email or phone as Q-ABC123 within {n} {noun}",
        ("day", "days"),
    ),
    "duplicate_not_routed": (
        lambda n: Note("duplicate_not_routed", reference="Q-ABC123", days=n),
        "Same email or phone as Q-ABC123 within {n} {noun}; not routed again.",
        ("day", "days"),
    ),
    "closed_by_retention": (
        lambda n: Note("closed_by_retention", months=n),
        "Closed by retention: no activity for {n} {noun}.",
        ("month", "months"),
    ),
    "spam_links": (
        lambda n: Note("spam", reasons=[{"what": "spam_links", "links": n, "most": 0}]),
        "Looks like spam: the details contain {n} {noun} (more than 0).",
        ("link", "links"),
    ),
    "mail_gave_up": (
        lambda n: Note("mail_gave_up", attempts=n, last=Note("mail_temporary", answer=verbatim("451 Busy"))),
        "Gave up after {n} {noun}; the last one: Refused for now (temporary). The mail server answered: "
        "\u2066451 Busy\u2069",
        ("attempt", "attempts"),
    ),
}


@pytest.mark.parametrize("key", COUNTED)
def test_a_count_of_one_and_of_two_each_take_their_own_form(app, taxonomy, monkeypatch, key):
    """Every sentence with a count is one ngettext: "1 lead", "2 leads" in English, and the
    catalog's form for each count in the reader's language (Danish here), never one form for all."""
    note, english, (singular, plural) = COUNTED[key]
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="contacted")
    db.session.flush()
    for count in (1, 2):
        lead.add_event("note", actor_type="system", note=note(count))
    db.session.commit()

    assert note(1).english == english.format(n=1, noun=singular)
    assert note(2).english == english.format(n=2, noun=plural)
    # The bracketed catalog holds each form as itself: the singular's words for 1, the plural's for 2.
    one, two = reversed(_notes_shown(_page(client, lead)))
    assert f"1 {singular}" in one and f"1 {plural}" not in one and one.startswith("⟦")
    assert f"2 {plural}" in two and two.startswith("⟦")


def test_a_danish_coordinator_reads_one_lead_and_two_leads(app, taxonomy):
    """In the Danish catalog's words (needs the catalog to hold the counted sentences)."""
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="contacted")
    db.session.flush()
    for count in (1, 2):
        lead.add_event(
            "note", actor_type="system", note=Note("provider_paused", provider="Aarhus", count=count)
        )
        lead.add_event("note", actor_type="system", note=Note("no_answer", provider="Odense", days=count))
    db.session.commit()

    paused = "Aarhus blev sat på pause: alle dens notifikationsadresser afviste e-mailen om"
    assert sorted(_notes_shown(_page(client, lead))) == sorted(
        [
            f"{paused} 1 forespørgsel",
            f"{paused} 2 forespørgsler",
            "Odense svarede ikke inden for 1 arbejdsdag.",
            "Odense svarede ikke inden for 2 arbejdsdage.",
        ]
    )


def _sent(app, **changes) -> Lead:
    """A request sent through the quote form, as the intake stores it."""
    response = client_with_own_address(app).post("/quote", data=answers(app, **changes))
    assert response.status_code == 303, re.findall(
        r"(?:error|problem)[^<]{0,200}", response.get_data(as_text=True)
    )
    return db.session.scalar(sa.select(Lead).order_by(Lead.id.desc()).limit(1))


def test_a_danish_coordinator_reads_the_intakes_and_retentions_status_reasons_and_notes(
    app, taxonomy, monkeypatch
):
    """Spam, a duplicate and retention's closing: the status reason and the history's note are
    each the catalogs' words around their values."""
    stalled = LeadFactory(status="contacted", created_at=utcnow() - timedelta(days=800))
    db.session.flush()
    reminded = stalled.add_event(
        "provider_reminded", actor_type="system", note=Note("provider_reminded", provider="Aarhus")
    )
    reminded.created_at = stalled.created_at
    db.session.commit()
    privacy.apply_retention(now=utcnow() + timedelta(days=30 * 24.1))
    db.session.expire_all()
    spam = _sent(app, full_name="www.casino.example", email="spam@example.org", phone="+45 20 99 88 77")
    earlier = LeadFactory(email="freja@example.org", created_at=utcnow() - timedelta(days=2))
    db.session.commit()
    duplicate = _sent(app)
    window = app.config["QUOTE_DUPLICATE_WINDOW_DAYS"]
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")

    spam_page = _page(client, spam)
    reasons = "⟦the name contains a link⟧; ⟦advertising phrases: casino⟧"
    assert _status_reason(spam_page) == f"⟦Looks like spam: {reasons}.⟧"
    consent_version = spam.consent.text_version
    assert _notes_shown(spam_page) == [
        f"⟦Looks like spam: {reasons}.⟧",
        f"⟦Sent the quote form (consent text {consent_version}).⟧",
    ]
    duplicate_page = _page(client, duplicate)
    said = f"Same email or phone as {earlier.reference} within {window} days"
    assert _status_reason(duplicate_page) == f"⟦{said}⟧"
    assert _notes_shown(duplicate_page)[0] == f"⟦{said}; not routed again.⟧"
    stalled_page = _page(client, stalled)
    months = app.config["RETENTION_STALLED_MONTHS"]
    assert _status_reason(stalled_page) == f"⟦Closed by retention: no activity for {months} months.⟧"
    assert _notes_shown(stalled_page)[0] == f"⟦Closed by retention: no activity for {months} months.⟧"
    # What the erasure left of the earlier notes says so in the reader's words.
    assert set(_notes_shown(stalled_page)[1:]) == {"⟦(removed when the patient's data was erased)⟧"}


def test_a_persons_words_and_what_was_written_before_show_as_stored(app, taxonomy, monkeypatch):
    """A coordinator's note and typed reason are never translated, even when they match a text
    the catalogs hold; rows written before notes had data show the English they hold."""
    read_bracketed(monkeypatch, "da")
    client, user = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="unroutable", status_reason="Same email or phone as Q-222222 within 30 days")
    db.session.flush()
    lead.add_event("rerouted", actor_type="system", note="Aarhus declined. Sent to: Odense Rehab.")
    db.session.commit()
    lead_actions.add_note(lead.id, user.id, "No live quote is left.")
    lead_actions.change_status(lead.id, user.id, "closed_lost", note="Went elsewhere")
    db.session.commit()

    page = _page(client, lead)
    assert _status_reason(page) == "Went elsewhere"
    assert _notes_shown(page)[:3] == [
        "Went elsewhere",
        "No live quote is left.",
        "Aarhus declined. Sent to: Odense Rehab.",
    ]
    before = LeadFactory(status="duplicate", status_reason="Same email or phone as Q-222222 within 30 days")
    typed = LeadFactory(status="spam", status_reason="Duplicate")  # a coordinator's, as a status's name
    db.session.commit()
    assert _status_reason(_page(client, before)) == "Same email or phone as Q-222222 within 30 days"
    assert _status_reason(_page(client, typed)) == "Duplicate"


def test_the_patients_data_export_keeps_the_history_in_english_and_an_erasure_its_values(app, taxonomy):
    """The export reads `note`, the English sentence; an erasure removes the values with the words
    (a clinic's note may name the patient)."""
    lead = _sent(app, full_name="www.casino.example")
    lead.add_event(
        "provider_declined",
        actor_type="provider",
        note=Note("provider_declined_with_note", provider="Aarhus", reason="x", note="Freja is too ill"),
    )
    db.session.commit()

    exported = privacy.export_patient(lead.reference, user_id=None, chosen=[lead.reference])
    [request] = exported["requests"]
    assert [event["note"] for event in request["history"]] == [
        f"Sent the quote form (consent text {lead.consent.text_version}).",
        "Looks like spam: the name contains a link; advertising phrases: casino.",
        "Aarhus declined: x. Note: Freja is too ill",
    ]
    privacy.erase_patient(lead.reference, user_id=None, door=privacy.COMMAND_LINE)
    stored = db.session.execute(
        sa.select(LeadEvent.note, LeadEvent.note_data).filter_by(lead_id=lead.id)
    ).all()
    assert "Freja" not in repr(stored)
    assert {note for note, _ in stored if note} == {"(removed when the patient's data was erased)"}
    assert json.loads(db.session.get(Lead, lead.id).status_reason) == {"what": "erased"}


def test_a_note_whose_values_its_words_cannot_take_is_refused_as_it_is_written(app):
    with pytest.raises(ValueError, match="cannot be worded"):
        event_values("note", actor_type="system", note=Note("no_answer", provider="Aarhus", days="three"))
    with pytest.raises(ValueError, match="cannot be worded"):
        event_values("note", actor_type="system", note=Note("quote_withdrawn"))


def test_an_email_an_erasure_emptied_while_it_went_out_is_said_failed_in_the_readers_words(
    app, taxonomy, monkeypatch
):
    """Why such an email failed is the system's own sentence, not a mail server's answer: inside
    the history's note it comes from the catalogs too, where it once sat in English on every page."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(email="patient@example.org")
    db.session.flush()
    email_id = queue_email(
        template="test_message", to=lead.email, idempotency_key="k1", sent_at=utcnow(), lead_id=lead.id
    )
    db.session.commit()
    email = db.session.get(EmailMessage, email_id)
    email.status, email.claimed_at, email.attempts = "sending", utcnow() - timedelta(hours=1), 1
    privacy.anonymise(lead)  # the patient's data erased while a worker, since dead, held the claim
    db.session.commit()

    due_email_ids()

    assert db.session.get(EmailMessage, email_id).last_error == ERASED_WHILE_SENT  # the row keeps English
    failed = [note for note in _notes_shown(_page(client, lead)) if "test_message" in note]
    assert failed == [f"⟦Email 'test_message' could not be delivered: ⟦{ERASED_WHILE_SENT}⟧⟧"]


def test_a_providers_score_in_the_history_is_written_with_the_readers_decimal_sign(app, taxonomy):
    """The score is stored as a number and written as the reader's language writes numbers, as
    the assignments' table beside it does; rows stored before hold the English text, shown so."""
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="routed")
    db.session.flush()
    lead.add_event(
        "note", actor_type="system", note=Note("provider_assigned", provider="A", rank=1, score=72.5)
    )
    lead.add_event(
        "note", actor_type="system", note=Note("provider_assigned", provider="B", rank=2, score=80.0)
    )
    lead.add_event(
        "note", actor_type="system", note=Note("provider_assigned", provider="C", rank=3, score="61.5")
    )
    db.session.commit()

    shown = " ".join(_notes_shown(_page(client, lead)))
    assert "72,5" in shown and "72.5" not in shown
    assert "score 80)" in shown and "score 61.5)" in shown
    english = db.session.scalars(sa.select(LeadEvent.note).filter_by(lead_id=lead.id)).all()
    assert any("score 72.5)" in note for note in english) and any("score 80)" in note for note in english)


def test_only_notes_without_anyones_words_are_kept_worded_in_memory(app):
    """The form's own note is worded once and kept (every form writes the same); a note quoting
    a coordinator's words is worded each time, so nothing of it outlives an erasure in memory."""
    _english.cache_clear()
    typed = Note("duplicate_marked_with_note", reference="Q-ABC123", note="Patient's sister called")
    assert typed.english == "Duplicate of Q-ABC123: Patient's sister called"
    assert _english.cache_info().currsize == 0
    sentences = {Note("submitted", version="2026-11-v1").english for _ in range(2)}
    assert sentences == {"Sent the quote form (consent text 2026-11-v1)."}
    assert _english.cache_info().currsize == 1
