"""Phone numbers as staff and clinics read them: stored in E.164, shown grouped in the international
format, dialled from a `tel:` link in E.164."""

import pytest

from leads.i18n import phone_for_dialling, phone_for_reading


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+49301234567", "+49 30 1234567"),
        ("+4520123456", "+45 20 12 34 56"),
        ("+971501234567", "+971 50 123 4567"),
    ],
)
def test_a_stored_number_is_shown_grouped_and_dialled_as_stored(stored, shown):
    assert phone_for_reading(stored) == shown
    assert phone_for_dialling(stored) == stored


@pytest.mark.parametrize("stored", ["", None, "20 12 34 56", "not a number"])
def test_a_value_that_is_no_international_number_is_shown_as_stored(stored):
    """An older row or an erased one: never refused, never guessed at."""
    assert phone_for_reading(stored) == (stored or "")
    assert phone_for_dialling(stored) == (stored or "")
