"""Staff pages in each staff member's own language (English or Danish, `My settings`): the queue,
the lead page and the settings say `<html lang>` truly and speak Danish to a coordinator who chose
it; the choice is kept; a language not on the list is refused at its field; before sign-in the
browser's English or Danish is used."""

import re

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from leads.models import User
from tests.factories import AssignmentFactory, LeadFactory, ProviderFactory
from tests.staff_support import fresh_client, marking_catalog, signed_in_client

# Words of English that no staff page in Danish may show outside the data itself.
SENTINELS = re.compile(
    r"\b(the|your|you|and|with|please|choose|request|queue|settings|save|sign|assigned|"
    r"provider|timeline|received|nobody|change|search|filters)\b",
    re.IGNORECASE,
)
# What is data rather than the page's words: the patient's own, stored notes, email subjects, the
# consent wording in the patient's language, a score breakdown stored before the engine kept codes.
DATA = re.compile(
    r"<(blockquote|dl class=\"facts breakdown\"|table class=\"breakdown\"|p class=\"note\")[^>]*>.*?"
    r"</(blockquote|dl|table|p)>",
    re.S,
)


def _visible_words(html: str) -> list[str]:
    text = DATA.sub(" ", html)
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)  # attributes (names, ids, urls) are not read
    text = text.replace("Danish Treatment Quotes", " ")
    return sorted({match.lower() for match in SENTINELS.findall(text)})


def _lang(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


@pytest.fixture
def danish(app, taxonomy):
    return signed_in_client(app, language="da")


def test_a_coordinator_who_chose_danish_reads_the_queue_lead_and_settings_in_danish(danish):
    client, user = danish
    lead = LeadFactory(status="routed", full_name="Petra Jensen")
    AssignmentFactory(lead=lead, provider=ProviderFactory(name="Odense Neuro"), status="declined",
                      decline_reason="no_capacity")  # fmt: skip
    db.session.commit()
    pages = {
        "/staff/leads": "Kø af forespørgsler",
        f"/staff/leads/{lead.id}": f"Forespørgsel {lead.reference}",
        "/staff/account/settings": "Mine indstillinger",
    }
    for path, heading in pages.items():
        html = client.get(path).get_data(as_text=True)
        assert _lang(html) == "da", path
        assert heading in html, path
        assert _visible_words(html) == [], f"English words on {path}"
    lead_page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "Videresendt" in lead_page  # the status, translated when shown; stored as 'routed'
    assert "Afvist: ingen kapacitet lige nu" in lead_page  # after a colon: no capital
    assert db.session.get(type(lead), lead.id).status == "routed"


def test_the_choice_is_kept_and_the_next_pages_follow_it(app, taxonomy):
    client, user = signed_in_client(app)
    assert _lang(client.get("/staff/leads").get_data(as_text=True)) == "en"
    form = client.get("/staff/account/settings").get_data(as_text=True)
    assert '<option selected value="en">English</option>' in form

    response = client.post(
        "/staff/account/settings", data={"time_zone": "Europe/Copenhagen", "language": "da"}
    )
    assert response.status_code == 302
    settings = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Dine indstillinger er gemt" in settings  # the confirmation in the language chosen
    assert '<option selected value="da">Dansk</option>' in settings
    db.session.expire_all()
    assert db.session.get(User, user.id).language == "da"
    assert _lang(client.get("/staff/leads").get_data(as_text=True)) == "da"


def test_a_language_not_on_the_list_is_refused_at_its_field_and_changes_nothing(app, taxonomy):
    client, user = signed_in_client(app)
    for bad in ("fr", "", "de", "da'><script>"):
        response = client.post("/staff/account/settings", data={"time_zone": "UTC", "language": bad})
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert '<p class="field-error" id="language-error">' in html
        assert "Choose English or Dansk from the list" in html or "Choose a language" in html
    db.session.expire_all()
    stored = db.session.get(User, user.id)
    assert (stored.language, stored.time_zone) == ("en", "Europe/Copenhagen")


def test_one_staff_members_language_is_not_anothers(app, taxonomy):
    danish_client, _ = signed_in_client(app, language="da")
    english_client, _ = signed_in_client(app)
    assert "Kø af forespørgsler" in danish_client.get("/staff/leads").get_data(as_text=True)
    assert "Lead queue" in english_client.get("/staff/leads").get_data(as_text=True)


def test_the_sign_in_page_follows_the_browser_between_english_and_danish(app):
    client = fresh_client(app)
    danish = client.get("/staff/login", headers={"Accept-Language": "da-DK,da;q=0.9,en;q=0.5"})
    assert _lang(danish.get_data(as_text=True)) == "da"
    assert "Log ind for medarbejdere" in danish.get_data(as_text=True)
    german = client.get("/staff/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert _lang(german.get_data(as_text=True)) == "en"  # staff pages are English or Danish only


def test_a_wrong_password_is_explained_in_danish_to_a_danish_browser(app):
    client = fresh_client(app)
    response = client.post(
        "/staff/login",
        data={"email": "nobody@example.dk", "password": "wrong password"},
        headers={"Accept-Language": "da"},
    )
    assert "Den e-mail og adgangskode virkede ikke" in response.get_data(as_text=True)


@pytest.mark.commits  # a second app on a database file of its own, migrated step by step
def test_migration_0007l_gives_every_existing_user_english(tmp_path):
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        flask_migrate.upgrade(revision="0006i")
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO user (id, email, password_hash, role, active, created_at, session_version, "
                    "time_zone) VALUES (1, 'a@example.dk', 'x', 'admin', 1, '2026-11-01 10:00:00', 0, 'UTC')"
                )
            )
        flask_migrate.upgrade(revision="0007l")
        with db.engine.connect() as connection:
            language = connection.execute(sa.text("SELECT language FROM user")).scalar_one()
        flask_migrate.downgrade(revision="0006i")
        with db.engine.connect() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("user")}
        db.engine.dispose()
    assert language == "en"
    assert "language" not in columns and "time_zone" in columns


def test_an_admin_who_chose_danish_reads_the_admin_pages_in_danish(app, taxonomy):
    client, _ = signed_in_client(app, role="admin", language="da")
    for path in (
        "/staff/stats",
        "/staff/admin/users",
        "/staff/admin/access-log",
        "/staff/admin/providers",
        "/staff/admin/providers/new",
        "/staff/admin/providers/import",
        "/staff/account/password",
    ):
        html = client.get(path).get_data(as_text=True)
        assert _lang(html) == "da", path
        assert _visible_words(html) == [], f"English words on {path}"


def test_a_page_that_needs_signing_in_says_so_in_the_readers_language_as_a_notice(app):
    """Nothing went wrong: a plain notice, neither an alert nor a step done."""
    client = fresh_client(app)
    danish = client.get("/staff/leads", headers={"Accept-Language": "da"}, follow_redirects=True)
    page = danish.get_data(as_text=True)
    assert danish.request.path == "/staff/login"
    assert '<p class="notice">Log ind for at se den side.</p>' in page and 'role="alert"' not in page
    english = fresh_client(app).get("/staff/leads", follow_redirects=True).get_data(as_text=True)
    assert '<p class="notice">Sign in to see that page.</p>' in english and 'role="alert"' not in english


# Every text a staff page shows goes through the catalogs -----------------------------------
# Read with a catalog that marks what it translates (⟦…⟧), a text shown unmarked is one no
# translation can reach: a Danish reader would see it in English.


def _refusal(response) -> str:
    """The action error a refused lead action shows (the summary's text)."""
    html = response.get_data(as_text=True)
    assert response.status_code == 409, html
    summary = html[html.index('id="error-summary-text"') :]
    return re.search(r"<li>(.*?)</li>", summary, re.S)[1].replace("&#39;", "'")


def test_the_lead_pages_refusals_reach_the_catalogs(app, taxonomy):
    client, _ = signed_in_client(app)
    lead = LeadFactory(status="new")
    later = LeadFactory(status="new")
    db.session.commit()
    with marking_catalog(app):
        itself = client.post(
            f"/staff/leads/{lead.id}/duplicate", data={"duplicate-original_reference": lead.reference}
        )
        after = client.post(
            f"/staff/leads/{lead.id}/duplicate", data={"duplicate-original_reference": later.reference}
        )
        illegal = client.post(
            f"/staff/leads/{lead.id}/status", data={"status-status": "booked", "status-current_status": "new"}
        )
        not_reroutable = client.post(
            f"/staff/leads/{lead.id}/reroute",
            data={"reroute-reason": "try others", "reroute-shown_offers": "new:0:0:0"},
        )
    assert _refusal(itself) == "⟦A request cannot be a duplicate of itself.⟧"
    assert _refusal(after) == (
        f"⟦{later.reference} arrived after this request. Mark {later.reference} as the duplicate instead.⟧"
    )
    assert _refusal(illegal).startswith("⟦A lead cannot go from '⟦New⟧' to '⟦Booked⟧'.")
    assert "⟦Routed⟧" in _refusal(illegal)
    assert _refusal(not_reroutable).startswith("⟦A lead in status '⟦New⟧' cannot be re-routed")


def test_the_staff_pages_texts_made_of_pieces_reach_the_catalogs(app, taxonomy):
    client, _ = signed_in_client(app, role="admin")
    original = LeadFactory(status="new")
    duplicate = LeadFactory(status="duplicate", duplicate_of=original)
    for n in range(11):  # one source more than the stats list: the rest is "Other"
        LeadFactory(utm_source=f"source-{n}")
    db.session.commit()
    with marking_catalog(app):
        queue = client.get("/staff/leads?source=nothing-matches").get_data(as_text=True)
        lead_page = client.get(f"/staff/leads/{duplicate.id}").get_data(as_text=True)
        log = client.get(f"/staff/admin/access-log?lead={original.reference}").get_data(as_text=True)
        stats = client.get("/staff/stats").get_data(as_text=True)
    assert '<p class="empty">⟦Nothing here.⟧' in queue
    assert re.search(r"\(⟦received [^)]*⟧\)|⟦\(received [^)]*\)⟧", lead_page)
    assert '<p class="empty">⟦Nothing logged for this filter.⟧</p>' in log
    assert "<td>⟦Other⟧</td>" in stats and "⟦Other⟧: 2" in stats  # chart and table
