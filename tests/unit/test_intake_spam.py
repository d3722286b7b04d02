"""Unit tests of each spam heuristic: what trips it, and what a real patient writes that must not.
Each reason is what it says and its values (`leads.notes` words it for the coordinator)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.intake.spam import SPAM_PHRASES, count_links, spam_reasons


def reasons(full_name="Freja Ørsted", details="Injured at C6 in 2023.", honeypot="", max_links=2):
    return spam_reasons(full_name=full_name, details=details, honeypot=honeypot, max_links=max_links)


def test_an_ordinary_request_trips_nothing():
    assert reasons() == []


@pytest.mark.parametrize(
    "details",
    [
        "My neurologist at https://hospital.example/neuro said I might be a candidate.",
        "See https://a.example and www.b.example for my records.",  # two links: still a person
        "Ich hatte 2019 einen Unfall; Querschnittlähmung auf Höhe Th12.",
        "أصبت بإصابة في الحبل الشوكي قبل ثلاث سنوات",
        "脊髓损伤，两年前受伤。",
        "<b>Important:</b> I use a wheelchair & need step-free access.",
    ],
)
def test_what_real_patients_write_is_not_spam(details):
    assert reasons(details=details) == []


def test_a_filled_honeypot_is_spam():
    assert reasons(honeypot="Buy now") == [{"what": "spam_hidden_field"}]


def test_a_honeypot_of_only_spaces_is_not_held_against_anyone():
    assert reasons(honeypot="   ") == []


@pytest.mark.parametrize(
    ("details", "links"),
    [
        ("http://a.example http://b.example https://c.example", 3),
        ("www.a.example www.b.example www.c.example www.d.example", 4),
        ('<a href="x">1</a> <a href="y">2</a> <A HREF="z">3</A>', 3),
        ("[url=http://a]a[/url] [url]http://b[/url] [url=c]c[/url]", 3),
        ('<a href="http://a">a</a> <a href="http://b">b</a> <a href="http://c">c</a>', 3),
    ],
)
def test_more_links_than_allowed_in_the_details_is_spam(details, links):
    assert count_links(details) == links
    assert reasons(details=details) == [{"what": "spam_links", "links": links, "most": 2}]


def test_the_link_allowance_is_configurable():
    details = "http://a.example http://b.example"
    assert reasons(details=details, max_links=1) == [{"what": "spam_links", "links": 2, "most": 1}]
    assert reasons(details=details, max_links=2) == []


def test_a_link_in_the_name_is_spam():
    assert reasons(full_name="Cheap pills http://x.example") == [{"what": "spam_link_in_name"}]


@pytest.mark.parametrize("phrase", SPAM_PHRASES)
def test_advertising_phrases_are_spam_in_any_case(phrase):
    found = reasons(details=f"Great {phrase.upper()} offer for you")
    assert found == [{"what": "spam_phrases", "phrases": phrase}]


def test_every_reason_is_listed_for_the_coordinator():
    found = reasons(
        full_name="www.casino.example",
        details="casino http://a http://b http://c",
        honeypot="x",
    )
    assert len(found) == 4


@given(st.text(), st.text(), st.text())
def test_the_heuristics_never_fail_on_any_text(full_name, details, honeypot):
    result = spam_reasons(full_name=full_name, details=details, honeypot=honeypot, max_links=2)
    assert isinstance(result, list) and all(isinstance(reason["what"], str) for reason in result)
