"""Country and language names in the reader's language, sorted the way that language sorts."""

import pytest

from leads.i18n import collation_key, countries, language_name, languages, money, patient_language


def _sorted(words, language):
    return sorted(words, key=collation_key(language))


def test_danish_and_norwegian_keep_ae_oe_aa_after_z():
    words = ["Åland", "Zambia", "Østrig", "Ægypten", "Albanien"]
    assert _sorted(words, "da") == ["Albanien", "Zambia", "Ægypten", "Østrig", "Åland"]
    assert _sorted(words, "nb") == ["Albanien", "Zambia", "Ægypten", "Østrig", "Åland"]


def test_swedish_sorts_a_ring_then_a_umlaut_then_o_umlaut_after_z():
    assert _sorted(["Österrike", "Ägypten", "Åland", "Zambia", "Albanien"], "sv") == [
        "Albanien",
        "Zambia",
        "Åland",
        "Ägypten",
        "Österrike",
    ]


def test_german_and_english_fold_accents_into_their_letter():
    assert _sorted(["Zypern", "Österreich", "Oman", "Ägypten", "Albanien"], "de") == [
        "Ägypten",
        "Albanien",
        "Oman",
        "Österreich",
        "Zypern",
    ]
    assert _sorted(["Zambia", "Åland Islands", "Albania"], "en") == ["Åland Islands", "Albania", "Zambia"]


def test_arabic_letters_with_hamza_sort_with_their_bare_letter():
    # أ (alef with hamza) sorts with ا, before ب, not after every other letter.
    assert _sorted(["بلجيكا", "أستراليا", "ألمانيا", "اليابان"], "ar")[-1] == "بلجيكا"


@pytest.mark.parametrize(
    ("language", "code", "name"),
    [("en", "DE", "Germany"), ("da", "DE", "Tyskland"), ("de", "DK", "Dänemark"), ("ar", "DK", "الدانمرك")],
)
def test_country_names_come_in_the_readers_language(language, code, name):
    assert dict(countries(language))[code] == name


def test_every_iso_country_is_offered_once_in_every_language():
    for language in ("en", "da", "de", "sv", "nb", "ar"):
        codes = [code for code, _ in countries(language)]
        assert len(codes) == len(set(codes)) > 240


def test_language_names_start_with_a_capital_where_the_script_has_one():
    assert dict(languages("da"))["de"] == "Tysk"
    assert dict(languages("sv"))["da"] == "Danska"
    assert dict(languages("de"))["da"] == "Dänisch"


@pytest.mark.parametrize(
    ("language", "item", "in_sentence"),
    [
        ("en", "English", "English"),
        ("da", "Engelsk", "engelsk"),
        ("nb", "Engelsk", "engelsk"),
        ("sv", "Engelska", "engelska"),
        ("de", "Englisch", "Englisch"),  # German capitalises every noun
        ("ar", "الإنجليزية", "الإنجليزية"),
    ],
)
def test_a_language_named_inside_a_sentence_keeps_the_readers_casing(language, item, in_sentence):
    assert language_name("en", language) == item  # an item of its own: a menu, an answer
    assert language_name("en-GB", language, in_sentence=True) == in_sentence
    assert language_name("xx", language, in_sentence=True) == "xx"


@pytest.mark.parametrize(
    ("stored", "language"),
    [
        ("de", "de"),
        ("DA", "da"),
        ("nb-NO", "nb"),
        ("no", "nb"),
        ("nn", "nb"),
        ("pl", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_a_patient_is_written_to_in_their_language_else_english(stored, language):
    assert patient_language(stored) == language


@pytest.mark.parametrize(
    ("language", "amount", "currency", "written"),
    [
        ("en", 20000, "EUR", "€20,000"),
        ("en", 149200, "DKK", "DKK\xa0149,200"),  # a code never touches the digits
        ("da", 20000, "EUR", "20.000\xa0€"),
        ("da", 149200, "DKK", "149.200\xa0kr."),
        ("de", 20000, "EUR", "20.000\xa0€"),
        ("sv", 20000, "EUR", "20\xa0000\xa0€"),
        ("nb", 20000, "EUR", "20\xa0000\xa0€"),
        ("ar", 20000, "EUR", "\u200f20,000\xa0€"),
    ],
)
def test_money_is_written_the_readers_way_in_whole_units(language, amount, currency, written):
    assert money(amount, currency, language) == written
