"""What people read is marked for translation: `make messages` (babel.cfg's mapping, its keywords)
extracts each refusal and field message below, and each as a whole sentence a translation can
reorder. The catalogs themselves are checked in test_translation_catalogs."""

from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

ROOT = Path(__file__).resolve().parents[2]
# As the Makefile's `pybabel extract -k _l -k lazy_gettext` reads them.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}


@pytest.fixture(scope="module")
def extracted() -> set:
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    found = extract_from_dir(ROOT, method_map, options_map, keywords=KEYWORDS)
    return {message for _, _, message, _, _ in found}


# Refusals and field messages a service, a view or the CSV import shows to a patient, a clinic or
# the staff (whose pages are English or Danish); each was English whatever the reader's language.
SHOWN = [
    "There is no live quote to withdraw.",
    "A request cannot be a duplicate of itself.",
    "%(reference)s arrived after this request. Mark %(reference)s as the duplicate instead.",
    "A lead cannot go from '%(current)s' to '%(target)s'. Allowed next statuses: %(allowed)s.",
    "A lead in status '%(status)s' cannot be re-routed; only %(statuses)s leads can.",
    "No staff account has the address %(email)s",
    "We hold no personal data under '%(text)s' (it may have been erased already).",
    "'%(region)s' is not a Danish region; use one of: %(regions)s",
    "Enter how many leads a week the provider takes, a whole number from 1 to %(max)d "
    "(to stop leads for a while, pause the provider)",
    "%(slugs)s: not a condition of any treatment the provider offers; "
    "add the treatment or remove the condition",
    "'%(slug)s' is already used; choose another",
    "Choose at least one condition the treatment is for",
    "Choose a CSV file to import",
    "not UTF-8 text; save the file as 'CSV UTF-8'",
    "has %(values)s values but the header names %(columns)s columns",
    "Remove the invisible control characters",
]


@pytest.mark.parametrize("message", SHOWN)
def test_each_message_shown_to_a_reader_is_extracted_for_the_catalogs(extracted, message):
    assert message in extracted


def test_each_line_about_a_patients_other_quote_is_one_sentence_naming_the_clinic(extracted):
    lines = [
        "You chose %(clinic)s on %(date)s.",
        "You chose %(clinic)s on %(date)s; your treatment is booked for %(treatment_date)s.",
        "%(clinic)s withdrew its quote.",
        "The quote from %(clinic)s is closed; you did not choose it.",
        "The quote from %(clinic)s was closed before you chose.",
        "The quote from %(clinic)s expired on %(date)s.",
        "You chose %(clinic)s on %(date)s; that choice has since ended.",
    ]
    assert [line for line in lines if line not in extracted] == []
    # The fragments that followed "<clinic>:" are gone: a translation could not move the name.
    fragments = [
        "you chose this clinic on %(date)s.",
        "closed; you did not choose it.",
        "closed before you chose.",
        "you chose this clinic on %(date)s; that choice has since ended.",
    ]
    assert [fragment for fragment in fragments if fragment in extracted] == []
