"""Admin pages for the provider directory and the taxonomy: an admin creates, edits, pauses and
reactivates providers and edits treatments and conditions; bad input gets a message at the field."""

import itertools
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from leads.auth import accounts
from leads.dev import seed
from leads.directory import taxonomy as taxonomy_service
from leads.directory.validation import InvalidFields
from leads.extensions import db
from leads.models import AddressBounce, Condition, Provider, Role, Treatment
from tests.helpers import count_rows
from tests.integration.test_directory_csv import AARHUS, HEADER, ODENSE

PASSWORD = "a long admin password"
_addresses = itertools.count(1)


def _client(app, role=Role.ADMIN):
    """A test client signed in through the real login form as a new staff member of `role`."""
    n = next(_addresses)
    email = f"{role}{n}@example.dk"
    accounts.create_user(email, PASSWORD, role)
    db.session.commit()
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.44.{n // 250}.{n % 250 + 1}"
    # Its own app context: Flask-Login caches the signed-in user in `g`, which a test's app
    # context would otherwise share between clients.
    with app.app_context():
        response = client.post("/staff/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    return client


def _provider(name):
    provider = db.session.scalar(sa.select(Provider).filter_by(name=name))
    db.session.rollback()
    return provider


def _id(model, slug):
    return db.session.scalar(sa.select(model.id).filter_by(slug=slug))


def _form(**changes):
    """A valid 'add provider' form for neurorehabilitation after spinal cord injury."""
    data = {
        "name": "Vejle Neuro Centre",
        "city": "Vejle",
        "region": "Syddanmark",
        "notification_emails": "leads@vejle-neuro.dk\nchief@vejle-neuro.dk",
        "languages": "da, en, de",
        "notification_language": "da",
        "weekly_capacity": "7",
        f"treatment_{_id(Treatment, 'neurorehabilitation-spinal-cord-injury')}": "approved",
        "conditions": ["spinal-cord-injury-complete", "spinal-cord-injury-incomplete"],
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def _errors(html: str) -> dict[str, str]:
    """Field id -> error message, from the page; and check each is tied to its field."""
    found = dict(re.findall(r'<p class="field-error" id="([\w-]+)-error">([^<]*)</p>', html))
    for field_id in found:
        assert f'href="#{field_id}' in html, f"no link to {field_id} in the error summary"
        assert re.search(rf'aria-describedby="[^"]*{field_id}-error', html), f"{field_id} error not described"
    return found


@pytest.fixture
def admin(app, taxonomy):
    return _client(app)


def _directory_urls(app):
    """Every directory route and method, with the id of a row that exists."""
    ids = {
        "provider_id": db.session.scalar(sa.select(sa.func.min(Provider.id))),
        "treatment_id": db.session.scalar(sa.select(sa.func.min(Treatment.id))),
        "condition_id": db.session.scalar(sa.select(sa.func.min(Condition.id))),
    }
    bounce = AddressBounce(provider_id=ids["provider_id"], address="a@example.dk", answer="550 No such user")
    db.session.add(bounce)
    db.session.flush()
    ids["bounce_id"] = bounce.id
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("directory."):
            url = re.sub(r"<int:(\w+)>", lambda m: str(ids[m.group(1)]), rule.rule)
            urls += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return urls


def test_every_directory_page_is_for_admins_only(app, taxonomy):
    seed.load_demo_providers()
    db.session.commit()
    urls = _directory_urls(app)
    assert len(urls) >= 15
    anonymous, coordinator, admin = app.test_client(), _client(app, Role.COORDINATOR), _client(app)
    db.session.rollback()  # the requests below run in their own app contexts and sessions

    def status(client, method, url):
        # A fresh app context per request: Flask-Login caches the user in `g`.
        with app.app_context():
            response = client.open(url, method=method)
        return response.status_code, response.headers.get("Location", "")

    for method, url in urls:
        code, location = status(anonymous, method, url)
        assert code == 302 and "/staff/login" in location, url
        assert status(coordinator, method, url)[0] == 403, url
        if method == "GET":
            assert status(admin, method, url)[0] == 200, url


def test_an_admin_adds_a_provider_and_sees_it_in_the_directory(admin):
    response = admin.post("/staff/admin/providers/new", data=_form())
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/admin/providers")
    provider = _provider("Vejle Neuro Centre")
    assert provider.notification_emails == ["leads@vejle-neuro.dk", "chief@vejle-neuro.dk"]
    assert (provider.languages, provider.notification_language, provider.weekly_capacity) == (
        ["da", "en", "de"],
        "da",
        7,
    )
    assert [(pt.treatment.slug, pt.evidence_status) for pt in provider.treatments] == [
        ("neurorehabilitation-spinal-cord-injury", "approved")
    ]
    page = admin.get("/staff/admin/providers").get_data(as_text=True)
    assert "Saved Vejle Neuro Centre." in page
    assert "Vejle Neuro Centre" in page and "0 of 7" in page and "Vejle, Syddanmark" in page


def _directory_row(admin, name: str) -> str:
    """The text of the directory table's row of the provider `name`."""
    page = admin.get("/staff/admin/providers").get_data(as_text=True)
    row = re.search(rf"<tr>\s*<th scope=\"row\"><a [^>]*>{re.escape(name)}</a>.*?</tr>", page, re.S)
    assert row, f"no row for {name}"
    return " ".join(re.sub(r"<[^>]+>", " ", row.group(0)).split())


def test_the_directory_shows_the_answer_figures_routing_weighs(admin):
    admin.post("/staff/admin/providers/new", data=_form())
    assert "No answers yet" in _directory_row(admin, "Vejle Neuro Centre")
    provider = db.session.scalar(sa.select(Provider).filter_by(name="Vejle Neuro Centre"))
    # As responses.refresh_provider_stats keeps them: 199 answered (66 acceptances), 1 expired.
    provider.response_count, provider.accepted_count = 199, 66
    provider.unanswered_count, provider.median_response_seconds = 1, 2 * 3600 + 5 * 60
    db.session.commit()
    row = _directory_row(admin, "Vejle Neuro Centre")
    assert "Answered 199 of 200 accepted 66, median answer 2 hr, 5 min" in row
    assert "No answers yet" not in row


def test_bad_input_is_explained_at_each_field_and_nothing_is_saved(admin):
    response = admin.post(
        "/staff/admin/providers/new",
        data=_form(
            name="",
            region="Atlantis",
            notification_emails="leads@vejle-neuro.dk\nnot-an-address",
            languages="da, klingon",
            weekly_capacity="-3",
            conditions=["als"],
        ),
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    errors = _errors(html)
    assert errors == {
        "name": "Enter the provider&#39;s name",
        "region": "&#39;Atlantis&#39; is not a Danish region; use one of: Hovedstaden, Sjælland, Syddanmark, "
        "Midtjylland, Nordjylland",
        "notification_emails": "Not a valid email address: not-an-address. Use the form name@clinic.dk",
        "languages": "Not a two-letter ISO 639-1 language code: klingon. For example da, en, de",
        "weekly_capacity": "Enter how many leads a week the provider takes, a whole number from 1 to 1000 "
        "(to stop leads for a while, pause the provider)",
        "conditions": "als: not a condition of any treatment the provider offers; add the treatment or "
        "remove the condition",
    }
    assert "The provider was not saved" in html
    # What the admin typed is kept.
    assert "not-an-address</textarea>" in html and 'value="da, klingon"' in html
    assert count_rows(Provider) == 0


def test_a_provider_must_offer_a_treatment(admin):
    data = _form()
    data = {k: v for k, v in data.items() if not k.startswith("treatment_")}
    html = admin.post("/staff/admin/providers/new", data=data).get_data(as_text=True)
    assert (
        '<p class="field-error" id="treatments-error">Choose at least one treatment the provider offers</p>'
        in html
    )
    assert 'href="#treatments"' in html
    assert count_rows(Provider) == 0


@pytest.mark.pg
def test_two_providers_cannot_share_a_name(admin):
    admin.post("/staff/admin/providers/new", data=_form())
    html = admin.post("/staff/admin/providers/new", data=_form(name="vejle neuro centre")).get_data(
        as_text=True
    )
    assert _errors(html) == {"name": "Another provider is already called &#39;Vejle Neuro Centre&#39;"}
    assert count_rows(Provider) == 1
    # In any case, letters beyond ASCII too (SQLite's lower() leaves Æ, Ø and Å as they are).
    admin.post("/staff/admin/providers/new", data=_form(name="Øresund Klinik"))
    for same in ("Øresund Klinik", "øRESUND KLINIK"):
        html = admin.post("/staff/admin/providers/new", data=_form(name=same)).get_data(as_text=True)
        assert _errors(html) == {"name": "Another provider is already called &#39;Øresund Klinik&#39;"}
    assert count_rows(Provider) == 2


def test_an_admin_edits_a_provider_from_a_prefilled_form(admin):
    admin.post("/staff/admin/providers/new", data=_form())
    provider_id = _provider("Vejle Neuro Centre").id
    html = admin.get(f"/staff/admin/providers/{provider_id}/edit").get_data(as_text=True)
    assert 'value="Vejle Neuro Centre"' in html and 'value="7"' in html
    assert "leads@vejle-neuro.dk\nchief@vejle-neuro.dk</textarea>" in html
    assert re.search(r'<option selected value="approved">Offered as an approved', html)
    stem_cells = f"treatment_{_id(Treatment, 'stem-cell-spinal-cord-injury')}"
    response = admin.post(
        f"/staff/admin/providers/{provider_id}/edit",
        data=_form(
            weekly_capacity="12", notification_emails="new@vejle-neuro.dk", **{stem_cells: "clinical_trial"}
        ),
    )
    assert response.status_code == 302
    provider = _provider("Vejle Neuro Centre")
    assert provider.weekly_capacity == 12 and provider.notification_emails == ["new@vejle-neuro.dk"]
    assert sorted((pt.treatment.slug, pt.evidence_status) for pt in provider.treatments) == [
        ("neurorehabilitation-spinal-cord-injury", "approved"),
        ("stem-cell-spinal-cord-injury", "clinical_trial"),
    ]


def test_editing_an_unknown_provider_is_not_found(admin):
    assert admin.get("/staff/admin/providers/999/edit").status_code == 404


def test_an_admin_pauses_a_provider_until_a_date_or_indefinitely_and_reactivates_it(admin):
    admin.post("/staff/admin/providers/new", data=_form())
    provider_id = _provider("Vejle Neuro Centre").id
    until = date.today() + timedelta(days=10)
    response = admin.post(f"/staff/admin/providers/{provider_id}/pause", data={"until": until.isoformat()})
    assert response.status_code == 302
    provider = _provider("Vejle Neuro Centre")
    assert provider.active and provider.paused_until > datetime.now(UTC)
    page = admin.get("/staff/admin/providers").get_data(as_text=True)
    assert f"Paused until {until.day} {until:%b %Y}" in page and "Reactivate" in page

    admin.post(f"/staff/admin/providers/{provider_id}/reactivate")
    provider = _provider("Vejle Neuro Centre")
    assert provider.active and provider.paused_until is None

    admin.post(f"/staff/admin/providers/{provider_id}/pause", data={"until": ""})
    assert _provider("Vejle Neuro Centre").active is False
    assert "is active again" in admin.post(
        f"/staff/admin/providers/{provider_id}/reactivate", follow_redirects=True
    ).get_data(as_text=True)
    assert _provider("Vejle Neuro Centre").active is True


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("2001-01-01", "The date the provider gets leads again must be in the future"),
        ("next tuesday", "Enter a date such as 2026-12-31"),
    ],
)
def test_a_pause_date_that_is_past_or_not_a_date_is_explained(admin, until, message):
    admin.post("/staff/admin/providers/new", data=_form())
    provider_id = _provider("Vejle Neuro Centre").id
    html = admin.post(f"/staff/admin/providers/{provider_id}/pause", data={"until": until}).get_data(
        as_text=True
    )
    assert _errors(html) == {"until": message}
    assert _provider("Vejle Neuro Centre").active is True
    assert _provider("Vejle Neuro Centre").paused_until is None


@pytest.mark.parametrize("action", ["new", "reactivate"])
def test_a_form_without_its_csrf_token_is_refused(admin, app, action):
    seed.load_demo_providers()
    db.session.commit()
    provider = db.session.scalar(sa.select(Provider).order_by(Provider.id))
    provider.active = False
    db.session.commit()
    provider_id = provider.id
    url = {
        "new": "/staff/admin/providers/new",
        "reactivate": f"/staff/admin/providers/{provider_id}/reactivate",
    }
    app.config["WTF_CSRF_ENABLED"] = True
    response = admin.post(url[action], data=_form(name="Forged Clinic"))
    assert response.status_code == 400
    assert count_rows(Provider) == 5 and db.session.get(Provider, provider_id).active is False


@pytest.mark.pg
def test_an_admin_uploads_a_csv_and_a_bad_one_is_explained_line_by_line(admin):
    import io

    bad = (HEADER + AARHUS + ODENSE.replace(",3,", ",x,")).encode()
    html = admin.post(
        "/staff/admin/providers/import", data={"file": (io.BytesIO(bad), "providers.csv")}
    ).get_data(as_text=True)
    assert "Nothing was imported: problems in the file: 1" in html
    assert "Line 3: weekly_capacity: Enter how many leads" in html
    assert count_rows(Provider) == 0
    good = (HEADER + AARHUS + ODENSE).encode()
    response = admin.post(
        "/staff/admin/providers/import",
        data={"file": (io.BytesIO(good), "providers.csv")},
        follow_redirects=True,
    )
    assert "Imported 2 providers (2 new, 0 updated)." in response.get_data(as_text=True)
    assert count_rows(Provider) == 2
    html = admin.post("/staff/admin/providers/import", data={}).get_data(as_text=True)
    assert _errors(html) == {"file": "Choose a CSV file to import"}


def test_an_admin_downloads_the_directory_as_csv(admin):
    seed.load_demo_providers()
    db.session.commit()
    response = admin.get("/staff/admin/providers/export.csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="providers.csv"'
    assert response.get_data(as_text=True).count("(demo)") == 5


def test_an_admin_adds_and_edits_a_treatment(admin):
    response = admin.post(
        "/staff/admin/taxonomy/treatments/new",
        data={
            "slug": "stem-cell-stroke",
            "name": "Stem cell therapy after stroke",
            "description": "Only within research studies.",
            "evidence_status": "investigational",
            "requires_review": "y",
            "active": "y",
            "conditions": ["als"],
        },
    )
    assert response.status_code == 302
    treatment = db.session.scalar(sa.select(Treatment).filter_by(slug="stem-cell-stroke"))
    assert (treatment.evidence_status, treatment.requires_review, treatment.active) == (
        "investigational",
        True,
        True,
    )
    assert [c.slug for c in treatment.conditions] == ["als"]
    treatment_id = treatment.id
    db.session.rollback()
    html = admin.get(f"/staff/admin/taxonomy/treatments/{treatment_id}/edit").get_data(as_text=True)
    assert "<code>stem-cell-stroke</code>" in html and 'value="Stem cell therapy after stroke"' in html
    response = admin.post(
        f"/staff/admin/taxonomy/treatments/{treatment_id}/edit",
        data={
            "slug": "renamed-slug",
            "name": "Stem cell therapy after stroke",
            "evidence_status": "clinical_trial",
            "conditions": ["als", "multiple-sclerosis-progressive"],
        },
    )
    assert response.status_code == 302
    treatment = db.session.get(Treatment, treatment_id)
    # The slug is public and fixed; unticked boxes turn the flags off.
    assert (treatment.slug, treatment.evidence_status, treatment.requires_review, treatment.active) == (
        "stem-cell-stroke",
        "clinical_trial",
        False,
        False,
    )
    page = admin.get("/staff/admin/taxonomy").get_data(as_text=True)
    assert "Saved the treatment Stem cell therapy after stroke." in page


def test_bad_treatment_input_is_explained_at_each_field(admin):
    html = admin.post(
        "/staff/admin/taxonomy/treatments/new",
        data={"slug": "Stem Cells!", "name": "", "evidence_status": "miracle"},
    ).get_data(as_text=True)
    assert _errors(html) == {
        "slug": "Use lower-case letters, digits and single hyphens, for example stem-cell-als",
        "name": "Enter the treatment's name",
        "evidence_status": "Choose the evidence status",
    }
    html = admin.post(
        "/staff/admin/taxonomy/treatments/new",
        data={"slug": "stem-cell-als", "name": "Again", "evidence_status": "approved"},
    ).get_data(as_text=True)
    assert _errors(html) == {
        "slug": "&#39;stem-cell-als&#39; is already used; choose another",
        "conditions": "Choose at least one condition the treatment is for",
    }


VALID_TAXONOMY = {
    "treatments": {
        "slug": "stem-cell-stroke",
        "name": "Stem cell therapy after stroke",
        "description": "Only within research studies.",
        "evidence_status": "investigational",
        "conditions": ["als"],
    },
    "conditions": {"slug": "stroke", "name": "Stroke", "category": "Neurological"},
}


@pytest.mark.pg  # PostgreSQL refuses NUL in text: each was a 500 there
@pytest.mark.parametrize(
    ("kind", "field", "text"),
    [
        ("treatments", "name", "Stem\x00 cells"),
        ("treatments", "description", "Only\x00 in trials"),
        ("treatments", "description", "Only in trials\x1b"),
        ("conditions", "name", "Stroke\x00"),
        ("conditions", "category", "Neuro\x00logical"),
    ],
)
@pytest.mark.parametrize("page", ["new", "edit"])
def test_a_control_character_in_a_treatment_or_condition_is_refused_at_its_field(
    admin, kind, field, text, page
):
    model = {"treatments": Treatment, "conditions": Condition}[kind]
    existing = db.session.scalar(sa.select(model).order_by(model.id).limit(1))
    before = (existing.name, getattr(existing, field))
    url = (
        f"/staff/admin/taxonomy/{kind}/new"
        if page == "new"
        else f"/staff/admin/taxonomy/{kind}/{existing.id}/edit"
    )
    response = admin.post(url, data={**VALID_TAXONOMY[kind], field: text})
    assert response.status_code == 200  # the form again
    assert _errors(response.get_data(as_text=True)) == {field: "Remove the invisible control characters"}
    db.session.expire_all()
    assert _id(model, VALID_TAXONOMY[kind]["slug"]) is None
    assert (existing.name, getattr(existing, field)) == before


def test_a_treatment_description_keeps_its_line_breaks(admin):
    data = {**VALID_TAXONOMY["treatments"], "description": "Only within research studies.\r\n\tAsk first."}
    assert admin.post("/staff/admin/taxonomy/treatments/new", data=data).status_code == 302
    description = db.session.scalar(sa.select(Treatment.description).filter_by(slug="stem-cell-stroke"))
    assert description == "Only within research studies.\r\n\tAsk first."


def test_an_admin_adds_and_edits_a_condition(admin):
    response = admin.post(
        "/staff/admin/taxonomy/conditions/new",
        data={"slug": "stroke", "name": "Stroke", "category": "Neurological", "active": "y"},
    )
    assert response.status_code == 302
    condition_id = _id(Condition, "stroke")
    html = admin.post(
        f"/staff/admin/taxonomy/conditions/{condition_id}/edit", data={"name": "", "category": ""}
    ).get_data(as_text=True)
    assert _errors(html) == {
        "name": "Enter the condition's name",
        "category": "Enter the category, for example Spinal cord injury",
    }
    admin.post(
        f"/staff/admin/taxonomy/conditions/{condition_id}/edit",
        data={"name": "Ischaemic stroke", "category": "  Neurological  "},
    )
    condition = db.session.get(Condition, condition_id)
    assert (condition.slug, condition.name, condition.category, condition.active) == (
        "stroke",
        "Ischaemic stroke",
        "Neurological",
        False,
    )


CONTROLS = "Remove the invisible control characters"


@pytest.mark.pg  # PostgreSQL refuses NUL in text: an error page there, where SQLite stored it
def test_invisible_control_characters_in_a_treatment_or_condition_are_refused_at_the_field(admin):
    treatment = {
        "slug": "stem-cell-stroke",
        "name": "Stem cell\x00 therapy",
        "description": "Only within studies.\nAsk\x1b us.",
        "evidence_status": "approved",
        "conditions": ["als"],
        "active": "y",
    }
    html = admin.post("/staff/admin/taxonomy/treatments/new", data=treatment).get_data(as_text=True)
    assert _errors(html) == {"name": CONTROLS, "description": CONTROLS}
    condition = {"slug": "stroke", "name": "Stroke\x00", "category": "Neuro\x07logical", "active": "y"}
    html = admin.post("/staff/admin/taxonomy/conditions/new", data=condition).get_data(as_text=True)
    assert _errors(html) == {"name": CONTROLS, "category": CONTROLS}
    assert _id(Treatment, "stem-cell-stroke") is None and _id(Condition, "stroke") is None
    # Line breaks and tabs are a description's own.
    treatment.update(name="Stem cell therapy", description="Only within studies.\r\n\tAsk us.")
    assert admin.post("/staff/admin/taxonomy/treatments/new", data=treatment).status_code == 302
    saved = db.session.scalar(sa.select(Treatment).filter_by(slug="stem-cell-stroke"))
    assert saved.description == "Only within studies.\r\n\tAsk us."


def test_the_taxonomy_service_refuses_control_characters_whoever_calls_it(app, taxonomy):
    with pytest.raises(InvalidFields) as refused:
        taxonomy_service.save_condition(
            None,
            taxonomy_service.ConditionData(
                slug="stroke", name="Stroke\x00", category="Neuro\x1b", active=True
            ),
        )
    assert refused.value.errors == {"name": CONTROLS, "category": CONTROLS}
    with pytest.raises(InvalidFields) as refused:
        taxonomy_service.save_treatment(
            None,
            taxonomy_service.TreatmentData(
                slug="stem-cell-stroke",
                name="Stem cell therapy\x85",
                description="Ask\x00 us.",
                evidence_status="approved",
                requires_review=False,
                active=True,
                conditions=["als"],
            ),
        )
    assert refused.value.errors == {"name": CONTROLS, "description": CONTROLS}
    db.session.rollback()
    assert _id(Treatment, "stem-cell-stroke") is None and _id(Condition, "stroke") is None
