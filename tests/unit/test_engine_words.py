"""The engine's score details in the reader's words (leads/routing/breakdown.py): every detail code
the engine can store is worded through the catalogs, numbers, percentages and durations as the
reader's locale writes them; a breakdown stored before the engine kept codes shows its text."""

from datetime import timedelta

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from hypothesis import given

from leads.routing import breakdown, engine
from leads.routing.engine import rank_providers
from tests.helpers import bracketed, read_bracketed
from tests.unit.test_engine import NOW, lead, provider, providers_strategy, top_ns
from tests.unit.test_engine import leads as lead_profiles


@pytest.fixture(scope="module")
def app():
    """A bare app with Flask-Babel: no database, no blueprints."""
    app = Flask(__name__)
    Babel(app)
    with app.app_context():
        yield app


@pytest.fixture
def reading(app, monkeypatch):
    """`with reading(language):` read in `language`, every text from the bracketed catalog."""

    def read_in(language: str):
        read_bracketed(monkeypatch, language)
        return force_locale(language)

    return read_in


def _details(matches) -> list[dict]:
    return [
        detail for match in matches for part in match.breakdown()["components"] for detail in part["details"]
    ]


def test_every_detail_code_the_engine_can_produce_has_a_wording(reading):
    """One provider down each branch of each component: the codes stored are the codes worded."""
    providers = [
        provider(1, response_count=3, unanswered_count=1, median_response_seconds=600),
        provider(2, treatments={1: engine.CLINICAL_TRIAL}, languages=frozenset({"da"})),
        provider(3, treatments={1: engine.INVESTIGATIONAL}, last_assigned_at=NOW - timedelta(hours=3)),
    ]
    details = _details(rank_providers(lead(), providers, now=NOW, top_n=3).matches)
    assert {d["code"] for d in details} == set(breakdown.WORDINGS)
    assert {d["evidence"] for d in details if d["code"] == engine.EVIDENCE} == set(breakdown.OFFERED_AS)
    with reading("da"):
        for detail in details:
            assert bracketed(breakdown.word(detail)), detail


@given(lead_profiles, providers_strategy(), top_ns)
def test_property_whatever_the_engine_stores_is_worded_through_the_catalogs(
    app, lead_profile, providers, top_n
):
    matches = rank_providers(lead_profile, providers, now=NOW, top_n=top_n).matches
    with pytest.MonkeyPatch.context() as monkeypatch:
        read_bracketed(monkeypatch, "da")
        with force_locale("da"):
            for detail in _details(matches):
                assert bracketed(breakdown.word(detail)), detail


def test_numbers_percentages_and_durations_follow_the_readers_locale(reading):
    answered = {"code": engine.ANSWERED, "answered": 1234, "leads": 2000}
    last = {"code": engine.LAST_LEAD, "seconds": 2 * 3600}
    with reading("da"):
        assert (
            breakdown.word(answered) == "⟦leads answered: 1.234 of 2.000 (62\xa0%)⟧"
        )  # a no-break space, as Danish writes it
        assert breakdown.word(last) == "⟦last lead for 2 timer siden⟧"
    with reading("de"):
        assert breakdown.word(last) == "⟦last lead vor 2 Stunden⟧"
        assert breakdown.word({"code": engine.MEDIAN_ANSWER, "seconds": 5 * 86400}) == (
            "⟦median time to answer: 5 Tage⟧"
        )


def test_a_part_reads_its_details_in_order_and_the_patients_language_by_name(reading):
    part = {
        "name": "language",
        "details": [{"code": engine.LACKS_LANGUAGE, "language": "de"}, {"code": engine.NO_ANSWERS_YET}],
    }
    with reading("en"):
        assert breakdown.why(part) == (
            "⟦does not speak the patient's language (German)⟧; ⟦no answers yet: counted as average⟧"
        )


def test_the_patients_language_is_named_mid_sentence_as_the_readers_language_writes_it(reading):
    speaks = {"code": engine.SPEAKS_LANGUAGE, "language": "en"}
    with reading("da"):
        assert breakdown.word(speaks) == "⟦speaks the patient's language (engelsk)⟧"
        assert breakdown.word({**speaks, "code": engine.LACKS_LANGUAGE}) == (
            "⟦does not speak the patient's language (engelsk)⟧"
        )
    with reading("de"):
        assert breakdown.word(speaks) == "⟦speaks the patient's language (Englisch)⟧"


def test_a_just_assigned_provider_reads_a_minute_ago_not_in_no_time(reading):
    with reading("en"):
        assert breakdown.word({"code": engine.LAST_LEAD, "seconds": 0}) == "⟦last lead 1 minute ago⟧"


def test_a_part_stored_before_the_engine_kept_codes_shows_its_text_as_it_is(reading):
    with reading("da"):
        assert breakdown.why({"name": "language", "detail": "speaks en"}) == "speaks en"


def test_a_detail_this_code_does_not_know_shows_its_values(reading):
    with reading("da"):
        assert breakdown.word({"code": "new_code", "count": 3}) == "new code 3"
        assert breakdown.word({"code": engine.EVIDENCE, "evidence": "compassionate_use"}) == (
            "evidence compassionate use"
        )
