"""The pure quote rules: bad input, validity, evidence statement, the operator's currency rates,
and the quote and assignment workflow tables."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

import config
from config import ConfigError
from leads import create_app
from leads.quotes.rules import (
    QuoteInput,
    RatesError,
    evidence_statement,
    indicative_conversion,
    last_valid_day,
    parse_amount,
    parse_rates,
    quote_problems,
    valid_until,
)
from leads.workdays import DANISH_TIME
from leads.workflow import (
    ALLOWED_TRANSITIONS,
    IllegalTransition,
    LeadStatus,
    assignment_sources,
    check_assignment_transition,
    check_quote_transition,
)

TODAY = date(2026, 11, 28)


def _input(**changes) -> QuoteInput:
    values = dict(
        price_from=20000,
        price_to=30000,
        currency="EUR",
        includes=["treatment"],
        earliest_start=date(2027, 1, 10),
        valid_days=30,
        needs_records=False,
        message="",
    )
    values.update(changes)
    return QuoteInput(**values)


def test_a_complete_quote_has_no_problems():
    assert quote_problems(_input(), TODAY) == {}
    assert quote_problems(_input(price_to=20000, earliest_start=TODAY), TODAY) == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price_to": 19999}, "price_to"),
        ({"price_from": -1}, "price_from"),
        ({"price_from": 0}, "price_from"),
        ({"price_to": 10_000_001}, "price_to"),
        ({"price_from": None}, "price_from"),
        ({"currency": "USD"}, "currency"),
        ({"currency": None}, "currency"),
        ({"includes": []}, "includes"),
        ({"includes": ["treatment", "spa"]}, "includes"),
        ({"earliest_start": date(2026, 11, 27)}, "earliest_start"),
        ({"valid_days": 0}, "valid_days"),
        ({"valid_days": 366}, "valid_days"),
        ({"message": "x" * 4001}, "message"),
        ({"message": "Hello\x00 there"}, "message"),  # PostgreSQL refuses NUL in text
        ({"message": "Ring\x07 us"}, "message"),
    ],
)
def test_each_bad_field_gets_its_own_message(changes, field):
    problems = quote_problems(_input(**changes), TODAY)
    assert list(problems) == [field] and problems[field]


@pytest.mark.parametrize(
    ("language", "typed"),
    [
        ("en", "20000"),
        ("en", "20,000"),
        ("da", "20000"),
        ("da", "20.000"),
        ("de", "20.000"),
        ("sv", "20 000"),  # typed with a plain space
        ("sv", "20\xa0000"),  # the locale's own no-break space, pasted
        ("nb", "20 000"),
        ("ar", "20,000"),
        ("da", " 20.000 "),
    ],
)
def test_a_whole_amount_is_read_as_the_pages_language_groups_it(language, typed):
    assert parse_amount(typed, language) == 20000


@pytest.mark.parametrize(
    ("language", "typed"),
    [
        ("da", "20,5"),  # a decimal
        ("da", "20.000,00"),
        ("en", "20000.00"),
        ("en", "20.000"),  # on an English page the point is a decimal point
        ("da", "20.00"),  # grouping that reads two ways: 2.000 or 20,00?
        ("en", "20,00"),
        ("da", "20 000"),  # Danish groups with a point, not a space
        ("en", "2e4"),
        ("en", "NaN"),
        ("da", "20.000 kr"),
        ("en", "lots"),
        ("en", ""),
    ],
)
def test_a_decimal_or_an_ambiguous_amount_is_not_read(language, typed):
    assert parse_amount(typed, language) is None


def test_a_message_may_have_lines_and_tabs_but_no_other_control_character():
    assert quote_problems(_input(message="Dear patient,\r\n\tsee you soon"), TODAY) == {}
    problems = quote_problems(_input(message="Dear patient,\r\n\x1b[31m"), TODAY)
    assert str(problems["message"]) == "Remove the invisible control characters"


@pytest.mark.parametrize(
    ("sent", "last_moment"),
    [
        # 16:00 in Copenhagen: 30 days on, to 23:59 Danish time (22:59 UTC), not 00:59 the day after.
        (
            datetime(2026, 11, 28, 15, 0, tzinfo=UTC),
            datetime(2026, 12, 28, 23, 59, 59, 999999, tzinfo=DANISH_TIME),
        ),
        # 00:30 on the 29th in Copenhagen, still the 28th in UTC: the days count from the Danish date.
        (
            datetime(2026, 11, 28, 23, 30, tzinfo=UTC),
            datetime(2026, 12, 29, 23, 59, 59, 999999, tzinfo=DANISH_TIME),
        ),
        # Summer time: 23:59 CEST is 21:59 UTC.
        (
            datetime(2026, 6, 30, 22, 30, tzinfo=UTC),
            datetime(2026, 7, 31, 23, 59, 59, 999999, tzinfo=DANISH_TIME),
        ),
    ],
)
def test_a_quote_is_valid_to_the_end_of_its_last_danish_day(sent, last_moment):
    assert valid_until(sent, 30) == last_moment


@pytest.mark.parametrize(
    ("sent", "day"),
    [
        (datetime(2026, 11, 28, 15, 0, tzinfo=UTC), date(2026, 12, 28)),  # winter, 23:59 CET
        (datetime(2026, 6, 30, 22, 30, tzinfo=UTC), date(2026, 7, 31)),  # 00:30 CEST on 1 July, summer
    ],
)
def test_the_last_valid_day_is_the_danish_day_the_clinic_counted_to(sent, day):
    assert last_valid_day(valid_until(sent, 30)) == day


@pytest.mark.parametrize(
    "stored",
    [
        datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC),  # 00:59 CET on the 21st
        datetime(2026, 7, 20, 23, 59, 59, 999999, tzinfo=UTC),  # 01:59 CEST on the 21st
    ],
)
def test_a_quote_stored_before_the_danish_rule_keeps_the_day_it_was_given(stored):
    """It ended at 23:59 UTC, early the next Danish day: its day is the 20th, as the clinic meant."""
    assert last_valid_day(stored) == stored.date()


def test_only_a_treatment_that_is_not_approved_carries_a_statement():
    assert evidence_statement("approved") is None
    assert "investigational" in evidence_statement("investigational")
    assert "clinical trial" in evidence_statement("clinical_trial")


def test_rates_are_read_both_ways_and_convert_to_hundreds():
    rates = parse_rates("EUR:DKK=7.46")
    assert rates[("EUR", "DKK")] == Decimal("7.46")
    eur_to_dkk = indicative_conversion(20000, 30000, "EUR", rates)
    assert (eur_to_dkk.currency, eur_to_dkk.low, eur_to_dkk.high) == ("DKK", 149200, 223800)
    assert indicative_conversion(150000, 150000, "DKK", rates).low == 20100
    assert parse_rates("") == {} and indicative_conversion(1, 2, "EUR", {}) is None


@pytest.mark.parametrize("bad", ["EUR:DKK", "EUR:DKK=abc", "EUR:USD=1.1", "EUR:DKK=-7", "EUR:EUR=1", "7.46"])
def test_an_unreadable_rate_is_refused_with_the_setting_named(bad):
    with pytest.raises(RatesError, match="CURRENCY_RATES"):
        parse_rates(bad)


def test_the_app_refuses_to_start_with_a_bad_currency_rate():
    with pytest.raises(ConfigError, match="CURRENCY_RATES"):
        create_app(config.TestingConfig, CURRENCY_RATES="EUR:DKK=seven")


def test_quotes_move_only_through_their_table():
    assert check_quote_transition("live", "chosen") == "chosen"
    assert check_quote_transition("expired", "live") == "live"
    # A coordinator's move out of chosen or booked ends the choice, for good.
    assert check_quote_transition("chosen", "choice_ended") == "choice_ended"
    for current, target in [
        ("chosen", "live"),
        ("choice_ended", "chosen"),
        ("choice_ended", "live"),
        ("live", "choice_ended"),
        ("not_chosen", "chosen"),
        ("withdrawn", "chosen"),
        ("live", "x"),
    ]:
        with pytest.raises(IllegalTransition):
            check_quote_transition(current, target)


def test_not_chosen_ends_an_accepted_or_waiting_assignment_and_nothing_else():
    assert assignment_sources("not_chosen") == ["accepted", "notified", "viewed"]
    with pytest.raises(IllegalTransition):
        check_assignment_transition("expired", "not_chosen")


def test_the_lead_goes_quoted_then_chosen_then_booked():
    S = LeadStatus
    assert S.QUOTED in ALLOWED_TRANSITIONS[S.CONTACTED]
    assert S.CHOSEN in ALLOWED_TRANSITIONS[S.QUOTED] and S.BOOKED in ALLOWED_TRANSITIONS[S.CHOSEN]
    assert S.UNROUTABLE in ALLOWED_TRANSITIONS[S.QUOTED]
