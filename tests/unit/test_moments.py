"""Moments on patient pages: in the patient's zone when their country keeps one clock, else in UTC,
the zone always named, written as the page's language writes dates and times."""

from datetime import UTC, datetime

from leads.i18n import country_zone, moment

WINTER = datetime(2026, 11, 28, 14, 5, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)


def test_a_country_with_one_zone_has_it_and_any_other_gets_utc():
    assert str(country_zone("DK")) == "Europe/Copenhagen"
    assert str(country_zone("se")) == "Europe/Stockholm"
    assert str(country_zone("US")) == "UTC"  # many zones: we cannot know which
    assert str(country_zone(None)) == "UTC"


def test_a_country_whose_zones_keep_one_clock_has_its_first_zone():
    """Germany lists Berlin and Büsingen, which never differ: a German patient reads German time.
    Spain's Canary Islands keep another clock, so Spain's patients read UTC."""
    assert str(country_zone("DE")) == "Europe/Berlin"
    assert str(country_zone("ES")) == "UTC"
    assert str(country_zone("AU")) == "UTC"


def test_a_moment_names_its_zone_in_every_language():
    assert moment(WINTER, "US", "en") == "November 28, 2026, 2:05\u202fPM UTC"
    assert moment(WINTER, "DK", "da") == "28. november 2026 15.05 CET"
    assert moment(SUMMER, "DK", "da") == "1. juli 2026 11.30 CEST"
    assert moment(WINTER, "NO", "nb").endswith(" CET")
    assert moment(WINTER, "DE", "de") == "28. November 2026, 15:05 CET"
    assert moment(WINTER, None, "ar").endswith(" UTC")
    assert moment(None) == ""
