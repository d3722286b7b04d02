"""Which requests for a signed link's page count as someone opening it: a plain GET does; a HEAD,
and a GET that says it fetches ahead of a person (a prefetch, a prerender, a preview), do not."""

import pytest

from leads.messaging.signed_links import opened_by_a_person


def test_a_plain_get_is_an_opening_and_a_head_is_not():
    assert opened_by_a_person("GET", {}) is True
    assert opened_by_a_person("GET", {"Accept": "text/html"}) is True
    assert opened_by_a_person("HEAD", {}) is False


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Sec-Purpose", "prefetch"),
        ("Sec-Purpose", "prefetch;prerender"),
        ("Sec-Purpose", "Prefetch; anonymous-client-ip"),
        ("Purpose", "prefetch"),
        ("X-Purpose", "preview"),
        ("X-Purpose", "PREVIEW"),
        ("X-Moz", "prefetch"),
    ],
)
def test_a_get_that_says_it_fetches_ahead_of_a_person_is_not_an_opening(header, value):
    assert opened_by_a_person("GET", {header: value}) is False


@pytest.mark.parametrize(
    ("header", "value"), [("Sec-Purpose", ""), ("X-Moz", "livemarks"), ("Purpose", "navigate")]
)
def test_other_values_of_those_headers_still_count(header, value):
    assert opened_by_a_person("GET", {header: value}) is True
