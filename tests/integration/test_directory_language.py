"""The directory's admin pages speak the admin's language, the messages Python makes included (the
provider and taxonomy checks, every problem of a CSV import): each is a whole text of the catalogs,
its values in placeholders. Read here through a catalog made from the code as it is (every marked
text translated as itself in brackets), so that a text a translator would never see shows bare.
The command line stays English, as every command does."""

import io
import re

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from leads.directory import csv_io
from leads.extensions import db
from leads.models import Provider, Role, Treatment
from tests.factories import ProviderFactory
from tests.helpers import bracketed, read_bracketed
from tests.integration.test_directory_admin import _errors, _form
from tests.integration.test_directory_csv import AARHUS, HEADER, ODENSE
from tests.staff_support import signed_in_client


@pytest.fixture
def admin(app, taxonomy, monkeypatch):
    """An admin who reads Danish, every text from the bracketed catalog."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.ADMIN, language="da")
    return client


def _all_bracketed(messages: dict[str, str]) -> dict[str, str]:
    """The messages that are not one translated text each."""
    return {key: message for key, message in messages.items() if not bracketed(message)}


def test_every_problem_of_the_provider_form_is_a_catalog_text(admin):
    ProviderFactory(name="Vejle Neuro Centre")
    db.session.commit()
    response = admin.post(
        "/staff/admin/providers/new",
        data=_form(
            region="Atlantis",
            notification_emails="not-an-address",
            languages="klingon",
            weekly_capacity="-3",
            conditions=["als"],
        ),
    )
    errors = _errors(response.get_data(as_text=True))
    assert set(errors) == {"region", "notification_emails", "languages", "weekly_capacity", "conditions"}
    assert _all_bracketed(errors) == {}
    assert "⟦&#39;Atlantis&#39; is not a Danish region; use one of: Hovedstaden," in errors["region"]
    errors = _errors(
        admin.post("/staff/admin/providers/new", data=_form(conditions=["nope"])).get_data(as_text=True)
    )
    assert errors["conditions"].startswith("⟦Unknown condition &#39;nope&#39;; known conditions: als, ")
    errors = _errors(admin.post("/staff/admin/providers/new", data=_form()).get_data(as_text=True))
    assert errors == {"name": "⟦Another provider is already called &#39;Vejle Neuro Centre&#39;⟧"}


def _import_problems(admin, content: bytes) -> list[str]:
    """The problems the import page lists, one per line."""
    html = admin.post(
        "/staff/admin/providers/import", data={"file": (io.BytesIO(content), "providers.csv")}
    ).get_data(as_text=True)
    summary = re.search(r'<div class="error-summary".*?</div>\s*</div>', html, re.S)
    assert summary, "no error summary"
    return re.findall(r"<li>(.*?)</li>", summary.group(0), re.S)


BAD_ROWS = [
    "Nameless,Vejle,Atlantis,not-an-address,xx,fr,0,sleeping,,stem-cell-als:miracle,als\n",
    ",Vejle,Syddanmark,a@b.dk,da,da,2,,,hsct-blood-cancer,als\n",
    "Magic,Vejle,Syddanmark,a@b.dk,da,da,2,,,stem-cell-magic,als\n",
    "Unknown,Vejle,Syddanmark,a@b.dk,da,da,2,,,stem-cell-als,stroke\n",
    "Sleepy,Vejle,Syddanmark,a@b.dk,da,da,2,paused,soon,stem-cell-als,als\n",
    "Awake,Vejle,Syddanmark,a@b.dk,da,da,2,active,2030-01-01,stem-cell-als,als\n",
    AARHUS.replace("Clinic,", "clinic ,"),
]


@pytest.mark.parametrize(
    ("content", "count"),
    [
        ((HEADER + AARHUS + "".join(BAD_ROWS)).encode(), 14),
        (b"", 1),
        (HEADER.encode(), 1),
        (b"name;city;region\n", 2),
        (HEADER.replace("languages,", "langs,").encode(), 2),
        (HEADER.replace("city,", "city,city,").encode(), 1),
        ((HEADER + AARHUS.replace("\n", ",extra\n")).encode(), 1),
        ((HEADER + 'x,"unterminated\n').encode(), 1),
        ((HEADER + AARHUS).encode() + b"\xff\n", 1),
    ],
    ids=[
        "rows",
        "empty",
        "header-only",
        "semicolons",
        "unknown-column",
        "named-twice",
        "values",
        "malformed",
        "not-utf8",
    ],
)
def test_every_problem_of_an_import_is_a_catalog_text_after_its_line_number(admin, content, count):
    problems = _import_problems(admin, content)
    assert len(problems) == count, problems
    for problem in problems:
        # "Line 3: region: ⟦…⟧" as one text, the problem itself one text too.
        assert re.fullmatch(r"⟦Line \d+: (\w+: )?⟦.+⟧⟧", problem, re.S), problem
    assert db.session.scalar(sa.select(sa.func.count(Provider.id))) == 0


def test_a_file_too_large_is_refused_in_the_readers_language(app, taxonomy, monkeypatch):
    """The page's body limit answers first (413); an import called from elsewhere says it."""
    read_bracketed(monkeypatch, "da")
    with force_locale("da"), pytest.raises(csv_io.ImportFailed) as failed:
        csv_io.import_providers(b"x" * (csv_io.MAX_BYTES + 1))
    assert [(error.line, error.message) for error in failed.value.errors] == [
        (1, "⟦the file is larger than 2 MB⟧")
    ]


def test_an_import_without_a_file_asks_for_one_in_the_catalogs_words(admin):
    errors = _errors(admin.post("/staff/admin/providers/import", data={}).get_data(as_text=True))
    assert errors == {"file": "⟦Choose a CSV file to import⟧"}


def test_every_problem_of_the_taxonomy_forms_is_a_catalog_text(admin):
    taken = admin.post(
        "/staff/admin/taxonomy/treatments/new",
        data={
            "slug": "stem-cell-als",
            "name": "Again",
            "evidence_status": "approved",
            "conditions": ["nope"],
        },
    )
    errors = _errors(taken.get_data(as_text=True))
    assert errors == {
        "slug": "⟦&#39;stem-cell-als&#39; is already used; choose another⟧",
        "conditions": "⟦Choose conditions from the list⟧",
    }
    html = admin.post(
        "/staff/admin/taxonomy/conditions/new",
        data={"slug": "als", "name": "ALS", "category": "Neurological"},
    ).get_data(as_text=True)
    assert _errors(html) == {"slug": "⟦&#39;als&#39; is already used; choose another⟧"}


def test_page_titles_hints_and_evidence_statuses_are_catalog_texts(admin):
    ProviderFactory(
        name="Vejle Neuro Centre",
        offers=[db.session.scalar(sa.select(Treatment).filter_by(slug="stem-cell-als"))],
    )
    db.session.commit()
    provider_id = db.session.scalar(sa.select(Provider.id))
    html = admin.get(f"/staff/admin/providers/{provider_id}/pause").get_data(as_text=True)
    assert "<title>⟦Pause Vejle Neuro Centre⟧ – ⟦Danish Treatment Quotes⟧</title>" in html
    html = admin.get("/staff/admin/taxonomy/treatments/new").get_data(as_text=True)
    assert '<span class="hint" id="description-hint">⟦Plain and honest.⟧</span>' in html
    providers = admin.get("/staff/admin/providers").get_data(as_text=True)
    assert "Stem cell therapy for ALS (⟦Approved⟧)" in providers  # the evidence status it is offered under
    taxonomy = admin.get("/staff/admin/taxonomy").get_data(as_text=True)
    treatments = taxonomy[: taxonomy.index('id="conditions-heading"')]
    statuses = re.findall(r"<td><code>[^<]+</code></td>\s*<td>([^<]*)</td>", treatments)
    assert statuses and _all_bracketed(dict(enumerate(statuses))) == {}


def test_the_command_line_lists_an_imports_problems_in_english(runner, taxonomy, tmp_path, monkeypatch):
    read_bracketed(monkeypatch, "da")
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + ODENSE.replace("Syddanmark", "Atlantis"), encoding="utf-8")
    result = runner.invoke(args=["providers", "import", str(path)])
    assert result.exit_code == 1
    assert (
        "bad.csv: line 2: region: 'Atlantis' is not a Danish region; use one of: Hovedstaden,"
        in result.stderr
    )
    assert "⟦" not in result.output
