"""Durations on staff pages: the two largest units that matter, abbreviated and paired as the
reader's language does it, not with English letters."""

from leads.i18n import duration

DAYS = 3 * 86400 + 4 * 3600
HOURS = 2 * 3600 + 5 * 60


def test_a_duration_is_written_in_danish_with_danish_units():
    assert duration(DAYS, "da") == "3 dage og 4 t."
    assert duration(HOURS, "da") == "2 t. og 5 min."
    assert duration(25 * 60, "da") == "25 min."
    assert duration(40, "da") == "40 sek."


def test_a_duration_is_written_in_german_with_german_units():
    assert duration(DAYS, "de") == "3 Tg., 4 Std."
    assert duration(HOURS, "de") == "2 Std., 5 Min."
    assert duration(86400, "de") == "1 Tg."  # no "0 Std."


def test_english_keeps_two_units_and_drops_a_zero_second_one():
    assert duration(DAYS, "en") == "3 days, 4 hr"
    assert duration(2 * 86400, "en") == "2 days"
    assert duration(-HOURS, "en") == "2 hr, 5 min"  # how long past due, as how long to go


def test_two_units_in_arabic_are_joined_once():
    # Babel's format_list would give the hours twice: Arabic's unit list has no pattern for two.
    assert duration(DAYS, "ar") == "3 أيام و4 س"
