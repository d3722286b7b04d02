"""The keys two texts are compared by "in any case": computed in Python, stored, the same on every
database."""

import pytest
from email_validator import validate_email

from leads.models.catalog import provider_name_key
from leads.models.lead import email_key


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Nordic Clinic", "nordic  clinic"),
        ("Øresund Klinik", "øRESUND KLINIK"),
        ("Straße Klinik", "STRASSE KLINIK"),
        ("A\u030arhus", "Århus"),  # Å typed as A and a combining ring
        ("Aarhus\u00a0Spine", " AARHUS SPINE "),
    ],
)
def test_provider_names_the_same_in_any_case_and_spacing_have_one_key(one, other):
    assert provider_name_key(one) == provider_name_key(other)


def test_provider_names_with_other_letters_have_other_keys():
    assert provider_name_key("Aarhus Spine") != provider_name_key("Århus Spine")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ØRSTED@example.org", "øRSTED@Example.ORG"),
        ("A\u030ase@example.org", "åSE@example.org"),  # Å typed as A and a combining ring
    ],
)
def test_email_addresses_the_same_in_any_case_have_one_key(one, other):
    assert email_key(one) == email_key(other)


def test_letters_that_only_casefold_makes_one_stay_two_addresses():
    assert email_key("straße@example.org") != email_key("strasse@example.org")


@pytest.mark.parametrize("typed", ["ØRSTED@EXAMPLE.ORG", "A\u030ase@Example.org", "Mia@example.org"])
def test_the_key_of_an_address_is_the_key_of_what_the_form_stores_for_it(typed):
    """The intake stores what email-validator returns (the domain lower-cased, the local part in NFC)."""
    assert email_key(validate_email(typed, check_deliverability=False).normalized) == email_key(typed)
