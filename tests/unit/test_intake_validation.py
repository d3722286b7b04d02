"""Unit tests of the quote form's pure cleaners, form token and taxonomy checks (no app, no DB)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads import consent
from leads.i18n import countries, languages
from leads.intake import cleaning as clean
from leads.intake import form_token
from leads.intake.choices import BUDGETS, CONTACT_PREFERENCES, TIMEFRAMES
from leads.intake.forms import check_answers
from leads.intake.taxonomy import ConditionOption, Taxonomy, TreatmentOption, condition_problem

# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "Søren Ærø Ågård",
        "أحمد بن علي",  # Arabic
        "王小明",  # Chinese
        "Zoë O'Brien-Núñez",
        "李",  # one character is a whole name in some languages
    ],
)
def test_names_in_any_script_are_kept_as_written(raw):
    assert clean.clean_name(raw) == raw


def test_a_name_typed_with_decomposed_accents_is_stored_composed():
    assert clean.clean_name("A\u030agård") == "Ågård"


@pytest.mark.parametrize("raw", ["Freja\r\nØrsted", "Freja\nØrsted", "Freja\rØrsted", "Freja\t Ørsted"])
def test_line_breaks_in_a_name_become_one_space(raw):
    assert clean.clean_name(raw) == "Freja Ørsted"


def test_control_characters_in_a_name_are_dropped():
    assert clean.clean_name("Fre\x00ja\x07 Ørsted") == "Freja Ørsted"


@pytest.mark.parametrize("raw", ["", "   ", "\r\n", None])
def test_a_missing_name_asks_for_it(raw):
    with pytest.raises(clean.Invalid, match="Enter your full name"):
        clean.clean_name(raw)


def test_a_very_long_name_says_the_limit_and_the_length():
    with pytest.raises(clean.Invalid, match=r"at most 120 characters \(it has 500\)"):
        clean.clean_name("Å" * 500)


def test_a_name_without_letters_is_refused():
    with pytest.raises(clean.Invalid, match="in letters"):
        clean.clean_name("12345 !!")


# --- email -----------------------------------------------------------------------------------


def test_an_email_domain_is_lowercased_and_the_local_part_kept():
    assert clean.clean_email("  Freja@Example.DK ") == "Freja@example.dk"


def test_an_internationalised_email_address_is_accepted():
    assert clean.clean_email("أحمد@مثال.com") == "أحمد@مثال.com"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter your email address"),
        ("freja.example.org", "with an @ in it"),
        ("freja@", "in the right format"),
        ("freja@@example.org", "in the right format"),
        ("freja@example", "in the right format"),
        ("a" * 250 + "@example.org", "too long"),
        ("freja@exa mple.org", "in the right format"),
    ],
)
def test_a_wrong_email_address_gets_a_specific_message(raw, message):
    with pytest.raises(clean.Invalid, match=message):
        clean.clean_email(raw)


# --- phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("+45 20 12 34 56", None, "+4520123456"),
        ("20 12 34 56", "DK", "+4520123456"),
        ("0045 20 12 34 56", None, "+4520123456"),
        ("030 1234567", "DE", "+49301234567"),
        ("+49 30 1234567", "DK", "+49301234567"),  # the + wins over the country
        ("(020) 7946 0958", "GB", "+442079460958"),
    ],
)
def test_phone_numbers_are_stored_in_e164(raw, country, e164):
    assert clean.clean_phone(raw, country) == e164


@pytest.mark.parametrize(
    ("raw", "country", "message"),
    [
        ("", "DK", "Enter a phone number with its country code, for example +45 12 34 56 78"),
        ("20 12 34 56", None, "with its country code, for example +45 12 34 56 78"),
        ("+45 12", None, "does not look complete"),
        ("+999 1234 5678", None, "do not recognise that country code"),
        ("hello", "DK", "using digits"),
        ("+45 " + "1" * 60, None, "too long"),
    ],
)
def test_a_wrong_phone_number_says_how_to_write_it(raw, country, message):
    with pytest.raises(clean.Invalid, match=re.escape(message)):
        clean.clean_phone(raw, country)


# --- choices ---------------------------------------------------------------------------------


def test_countries_are_iso_alpha2_and_sorted_for_people():
    codes = [code for code, _ in countries("en")]
    assert "DK" in codes and "DE" in codes and len(codes) == len(set(codes)) > 240
    names = [name for _, name in countries("en")]
    assert names.index("Åland Islands") < names.index("Albania")  # Å sorts with A


def test_country_and_language_codes_are_checked_and_normalised():
    assert clean.clean_country(" dk ") == "DK"
    assert clean.clean_language("DA") == "da"
    assert dict(languages("en"))["da"] == "Danish"
    with pytest.raises(clean.Invalid, match="country you live in"):
        clean.clean_country("XX")
    with pytest.raises(clean.Invalid, match="language"):
        clean.clean_language("xx")


def test_a_choice_outside_the_list_gets_the_fields_own_message():
    assert clean.clean_choice("3-6-months", TIMEFRAMES, "Choose when") == "3-6-months"
    with pytest.raises(clean.Invalid, match="Choose when"):
        clean.clean_choice("tomorrow", TIMEFRAMES, "Choose when")


# --- details and tracking --------------------------------------------------------------------


def test_html_in_the_details_is_kept_as_text_to_be_escaped_when_shown():
    raw = '<script>alert(1)</script><b>C6</b> & "more"'
    assert clean.clean_details(raw) == raw


def test_details_keep_line_breaks_and_lose_control_characters():
    assert clean.clean_details("line one\r\nline two\x00\x1b\n\ttabbed  ") == "line one\nline two\n\ttabbed"
    # DEL and the C1 controls (a terminal's CSI) too, and nothing printable around them.
    assert clean.clean_details("red\x9b31m\x7f text\xa0é") == "red31m text\xa0é"


def test_details_may_be_empty_but_not_longer_than_the_limit():
    assert clean.clean_details("") == ""
    assert len(clean.clean_details("x" * clean.DETAILS_MAX)) == clean.DETAILS_MAX
    with pytest.raises(clean.Invalid, match="4000 characters or fewer \\(it has 4001\\)"):
        clean.clean_details("x" * (clean.DETAILS_MAX + 1))


def test_utm_values_are_one_line_and_cut_to_size():
    assert clean.clean_tracking("spring\r\nissue") == "spring issue"
    assert clean.clean_tracking("x" * 500) == "x" * 100
    assert clean.clean_tracking("  ") is None


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("https://magazine.example/stem-cells?x=1", "https://magazine.example/stem-cells?x=1"),
        ("javascript:alert(1)", None),
        ("not a url", None),
        ("", None),
    ],
)
def test_only_web_addresses_are_kept_as_referrer(raw, stored):
    assert clean.clean_referrer(raw) == stored


def test_slugs_from_links_are_checked():
    assert clean.clean_slug(" Stem-Cell-ALS ") == "stem-cell-als"
    assert clean.clean_slug("../etc/passwd") is None
    assert clean.clean_slug("x" * 200) is None


@given(st.text())
def test_cleaners_only_ever_raise_invalid(text):
    for cleaner in (
        clean.clean_name,
        clean.clean_email,
        clean.clean_country,
        clean.clean_language,
        clean.clean_details,
        lambda value: clean.clean_phone(value, "DK"),
        lambda value: clean.clean_phone(value, None),
    ):
        try:
            result = cleaner(text)
        except clean.Invalid as problem:
            assert str(problem)
        else:
            assert "\x00" not in result
    assert clean.clean_tracking(text) is None or len(clean.clean_tracking(text)) <= clean.TRACKING_MAX


# --- the form token (time trap) ----------------------------------------------------------------

SECRET = "unit-test-secret"


def test_a_token_round_trips_its_time_version_and_key():
    token = form_token.read(SECRET, form_token.issue(SECRET, consent_version="v9", now=1000.0))
    assert token.issued_at == 1000.0 and token.consent_version == "v9" and len(token.key) >= 32


def test_every_token_has_its_own_key():
    first = form_token.read(SECRET, form_token.issue(SECRET, consent_version="v", now=1.0))
    second = form_token.read(SECRET, form_token.issue(SECRET, consent_version="v", now=1.0))
    assert first.key != second.key


@pytest.mark.parametrize("raw", [None, "", "garbage", "a" * 1000])
def test_a_missing_or_malformed_token_reads_as_none(raw):
    assert form_token.read(SECRET, raw) is None


def test_a_token_signed_with_another_key_or_edited_is_refused():
    token = form_token.issue(SECRET, consent_version="v", now=1.0)
    assert form_token.read("another-secret", token) is None
    # A character inside the signature: the last one may carry only padding bits.
    assert form_token.read(SECRET, token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]) is None


@pytest.mark.parametrize(
    ("age", "problem"),
    [
        (0.0, form_token.TokenProblem.TOO_FAST),
        (3.9, form_token.TokenProblem.TOO_FAST),
        (-30.0, form_token.TokenProblem.TOO_FAST),  # a clock ahead of ours is not a head start
        (4.0, None),
        (3600.0, None),
        (86400.0, None),
        (86401.0, form_token.TokenProblem.EXPIRED),
    ],
)
def test_the_time_trap_refuses_forms_sent_too_fast_or_too_late(age, problem):
    token = form_token.FormToken(key="k", issued_at=10_000.0, consent_version="v")
    assert form_token.problem(token, now=10_000.0 + age, min_seconds=4, max_age=86400) == problem


def test_no_token_is_a_problem():
    assert form_token.problem(None, now=0, min_seconds=4, max_age=10) == form_token.TokenProblem.MISSING


def test_every_problem_tells_the_patient_their_answers_are_kept():
    for problem in form_token.TokenProblem:
        assert "Your answers are still here" in form_token.PROBLEM_MESSAGES[problem]


# --- consent wording -------------------------------------------------------------------------


def test_the_current_consent_wording_is_a_known_version_with_both_purposes():
    current = consent.current()
    assert consent.text_for(current.version) is current
    assert "Danish clinics" in current.share and "contacted" in current.contact
    assert consent.text_for("no-such-version") is None and consent.text_for(None) is None


# --- taxonomy --------------------------------------------------------------------------------

TAXONOMY = Taxonomy(
    treatments=(
        TreatmentOption("stem-cell-als", "Stem cell therapy for ALS", "", "investigational", ("als",)),
        TreatmentOption("knee-care", "Knee care", "", "approved", ("knee",)),
    ),
    conditions=(
        ConditionOption("als", "ALS", "Neurological"),
        ConditionOption("knee", "Knee osteoarthritis", "Orthopaedic"),
    ),
)


def test_a_condition_must_belong_to_the_chosen_treatment():
    assert condition_problem(TAXONOMY, "stem-cell-als", "als") is None
    message = condition_problem(TAXONOMY, "stem-cell-als", "knee")
    assert "Stem cell therapy for ALS is not offered for this condition (Knee osteoarthritis)" in message


def test_an_unknown_condition_asks_to_choose_from_the_list():
    assert "from the list" in condition_problem(TAXONOMY, "stem-cell-als", "nope")
    assert "from the list" in condition_problem(TAXONOMY, None, None)


def test_conditions_are_grouped_by_category_and_know_their_treatments():
    assert [group for group, _ in TAXONOMY.conditions_by_category()] == ["Neurological", "Orthopaedic"]
    assert TAXONOMY.treatments_for("knee") == ("knee-care",)


# --- a sent form, checked from its raw values ------------------------------------------------

SENT = {
    "full_name": "Freja Ørsted",
    "email": "freja@example.org",
    "phone": "20 12 34 56",
    "country": "DK",
    "preferred_language": "da",
    "treatment": "knee-care",
    "condition": "knee",
    "details": "",
    "timeframe": TIMEFRAMES[0][0],
    "budget": BUDGETS[0][0],
    "contact_preference": CONTACT_PREFERENCES[0][0],
    "consent_share": "y",
    "consent_contact": "y",
    "utm_source": "magazine",
    "referrer": "https://example.com/article",
    "message_subject": "",
}


def test_sent_answers_are_cleaned_and_become_the_intakes_request():
    answers = check_answers(SENT, TAXONOMY)
    assert answers.valid and answers.errors == {}
    assert answers.cleaned["phone"] == "+4520123456"  # read in the country given
    token = form_token.FormToken(key="k1", issued_at=0.0, consent_version="v1", consent_language="da")
    request = answers.to_request(token)
    assert (request.treatment, request.condition, request.submission_key) == ("knee-care", "knee", "k1")
    assert request.utm["utm_source"] == "magazine" and request.utm["utm_medium"] is None
    assert request.referrer == "https://example.com/article" and request.honeypot == ""


def test_every_problem_of_a_sent_form_is_found_at_once():
    sent = {**SENT, "email": "no address", "condition": "als", "budget": "a lot", "consent_share": "false"}
    del sent["consent_contact"]
    answers = check_answers(sent, TAXONOMY)
    assert not answers.valid
    # A tick box sent as "false", or not sent, is not ticked (as WTForms reads it).
    assert list(answers.errors) == ["email", "condition", "budget", "consent_share", "consent_contact"]
    assert "Knee care is not offered for this condition (ALS)" in str(answers.errors["condition"][0])
    assert "email" not in answers.cleaned and answers.cleaned["country"] == "DK"


def test_a_treatment_not_on_offer_is_refused_beside_its_field():
    answers = check_answers({**SENT, "treatment": "no-such-thing"}, TAXONOMY)
    assert list(answers.errors) == ["treatment"]
    assert "from the list" in str(answers.errors["treatment"][0])
