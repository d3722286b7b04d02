"""The keys two texts are compared by "in any case": computed in Python, stored, the same on every
database."""

import pytest

from leads.models.catalog import provider_name_key


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
