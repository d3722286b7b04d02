"""Two admins saving the same provider name or taxonomy slug at once: the one whose save lands second
gets the page again with the field's usual "already used" message, not an error page, and the
directory keeps one row. The database's unique keys decide; the check before the insert only
explains early."""

import pytest
import sqlalchemy as sa

from leads.directory import csv_io, service, taxonomy
from leads.directory.csv_io import ImportFailed, import_providers
from leads.extensions import db
from leads.models import Condition, Provider, Treatment
from tests.factories import ConditionFactory, ProviderFactory, TreatmentFactory
from tests.helpers import committed_once_waited_on, count_rows
from tests.integration.test_directory_admin import _client, _errors, _form
from tests.integration.test_directory_csv import HEADER, ODENSE

# The unique keys' errors differ on PostgreSQL, where two requests can really interleave.
pytestmark = pytest.mark.pg

TAKEN_NAME = {"name": "Another provider is already called &#39;Vejle Neuro Centre&#39;"}


def _misses_once(monkeypatch, module, name):
    """`module.name`, a check before an insert, misses what another admin saves right after it
    looked: its first answer is "nothing there"; later ones are real."""
    real, calls = getattr(module, name), []

    def check(*args, **kwargs):
        calls.append(args)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(module, name, check)
    return calls


@pytest.fixture
def admin(app, taxonomy):
    return _client(app)


def test_a_provider_saved_meanwhile_under_the_same_name_is_explained_at_the_name(admin, monkeypatch):
    ProviderFactory(name="Vejle Neuro Centre")  # the first admin's, committed after our check
    db.session.commit()
    checks = _misses_once(monkeypatch, service, "find_by_name")
    response = admin.post("/staff/admin/providers/new", data=_form())
    assert response.status_code == 200
    assert _errors(response.get_data(as_text=True)) == TAKEN_NAME
    assert checks, "the check before the insert was not asked"
    assert count_rows(Provider) == 1


def test_a_provider_saved_meanwhile_under_the_same_name_in_another_case_is_explained_at_the_name(
    admin, monkeypatch
):
    """The unique key is the name in any case (Provider.name_key), not the name as typed."""
    ProviderFactory(name="VEJLE NEURO CENTRE")
    db.session.commit()
    _misses_once(monkeypatch, service, "find_by_name")
    response = admin.post("/staff/admin/providers/new", data=_form())
    assert response.status_code == 200
    assert _errors(response.get_data(as_text=True)) == {
        "name": "Another provider is already called &#39;VEJLE NEURO CENTRE&#39;"
    }
    assert count_rows(Provider) == 1


def test_an_import_that_meets_a_name_saved_meanwhile_imports_nothing_and_names_the_line(
    app, taxonomy, monkeypatch
):
    ProviderFactory(name="Odense Trial Unit")
    db.session.commit()
    _misses_once(monkeypatch, csv_io, "find_by_name")  # "new": so the import adds it
    _misses_once(monkeypatch, service, "find_by_name")
    with pytest.raises(ImportFailed) as failed:
        import_providers((HEADER + ODENSE).encode())
    db.session.rollback()
    assert [str(error) for error in failed.value.errors] == [
        "line 2: name: Another provider is already called 'Odense Trial Unit'"
    ]
    assert count_rows(Provider) == 1


@pytest.mark.parametrize("kind", ["treatments", "conditions"])
def test_a_slug_added_meanwhile_is_explained_at_the_slug(admin, monkeypatch, kind):
    if kind == "treatments":
        TreatmentFactory(slug="stem-cell-stroke")
        data = {
            "slug": "stem-cell-stroke",
            "name": "Stroke",
            "evidence_status": "approved",
            "conditions": ["als"],
        }
    else:
        ConditionFactory(slug="stroke")
        data = {"slug": "stroke", "name": "Stroke", "category": "Neurological"}
    db.session.commit()
    before = count_rows(Treatment), count_rows(Condition)
    _misses_once(monkeypatch, taxonomy, "_check_slug")
    response = admin.post(f"/staff/admin/taxonomy/{kind}/new", data=data)
    assert response.status_code == 200
    assert _errors(response.get_data(as_text=True)) == {
        "slug": f"&#39;{data['slug']}&#39; is already used; choose another"
    }
    assert (count_rows(Treatment), count_rows(Condition)) == before


@pytest.mark.pg_only  # SQLite runs one writer at a time, from its first statement to its commit
@pytest.mark.commits  # the first admin's save is another connection's
def test_two_admins_adding_the_same_provider_at_once_keep_one_and_the_second_is_told(app, admin):
    with committed_once_waited_on(app, lambda: ProviderFactory(name="Vejle Neuro Centre")):
        response = admin.post("/staff/admin/providers/new", data=_form())
    assert response.status_code == 200
    assert _errors(response.get_data(as_text=True)) == TAKEN_NAME
    assert db.session.scalars(sa.select(Provider.city)).all() == ["Aarhus"]  # the first admin's


@pytest.mark.pg_only
@pytest.mark.commits
def test_two_admins_adding_the_same_provider_in_another_case_at_once_keep_one_and_the_second_is_told(
    app, admin
):
    with committed_once_waited_on(app, lambda: ProviderFactory(name="vejle neuro centre")):
        response = admin.post("/staff/admin/providers/new", data=_form())
    assert response.status_code == 200
    assert _errors(response.get_data(as_text=True)) == {
        "name": "Another provider is already called &#39;vejle neuro centre&#39;"
    }
    assert db.session.scalars(sa.select(Provider.city)).all() == ["Aarhus"]


@pytest.mark.pg_only
@pytest.mark.commits
def test_two_admins_adding_the_same_condition_slug_at_once_keep_one_and_the_second_is_told(app, admin):
    with committed_once_waited_on(app, lambda: ConditionFactory(slug="stroke", name="First")):
        response = admin.post(
            "/staff/admin/taxonomy/conditions/new",
            data={"slug": "stroke", "name": "Second", "category": "Neurological"},
        )
    assert response.status_code == 200
    assert _errors(response.get_data(as_text=True)) == {
        "slug": "&#39;stroke&#39; is already used; choose another"
    }
    assert db.session.scalars(sa.select(Condition.name).filter_by(slug="stroke")).all() == ["First"]
