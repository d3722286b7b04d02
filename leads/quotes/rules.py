"""The pure rules of a quote: what it may contain, when it is valid, what it says about evidence,
and the indicative currency conversion. No Flask, no database session."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from babel.numbers import NumberFormatError, get_group_symbol, parse_decimal
from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l

from leads.i18n import Term
from leads.validators import CONTROLS_MESSAGE, has_control_characters
from leads.workdays import DANISH_TIME, danish_date

CURRENCIES = ("EUR", "DKK")
INCLUDES = {
    "treatment": Term(_l("Treatment"), _l("treatment")),
    "assessment": Term(_l("Assessment"), _l("assessment")),
    "hospital_stay": Term(_l("Hospital stay"), _l("hospital stay")),
    "rehabilitation": Term(_l("Rehabilitation"), _l("rehabilitation")),
    "follow_up": Term(_l("Follow-up"), _l("follow-up")),
    "travel_help": Term(_l("Travel and accommodation help"), _l("travel and accommodation help")),
}
# Above this, in either currency, an amount is a typing mistake rather than a price.
MAX_AMOUNT = 10_000_000
DEFAULT_VALID_DAYS = 30
MAX_VALID_DAYS = 365
MAX_MESSAGE = 4000

EVIDENCE_STATEMENTS = {
    "investigational": _l(
        "This treatment is investigational: it is not an approved treatment and its benefit is not "
        "proven. It is offered outside routine care."
    ),
    "clinical_trial": _l(
        "This treatment is offered within a clinical trial: it is not yet an approved treatment, and "
        "the trial decides who can take part."
    ),
}


class RatesError(ValueError):
    """A CURRENCY_RATES value that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class QuoteInput:
    price_from: int | None
    price_to: int | None
    currency: str | None
    includes: list[str]
    earliest_start: date | None
    valid_days: int | None
    needs_records: bool
    message: str


def parse_amount(text: str, language: str) -> int | None:
    """A whole amount as a reader of `language` types it: 20000 in any language, or grouped the
    language's way (20,000 in English, 20.000 in Danish and German, 20 000 in Swedish and
    Norwegian); None for anything else, which the rules then ask to be written as a whole number.

    Strict, so nothing is guessed: grouping that reads two ways (20.00 in Danish) is refused, and
    so is a decimal (20,5 in Danish; 20.000 on an English page, where the point is a decimal point).
    """
    text = text.strip()
    group = get_group_symbol(language)
    if group.isspace():
        # The locale groups with a no-break space; the space people type is the plain one.
        text = text.replace(" ", group)
    try:
        amount = parse_decimal(text, locale=language, strict=True)
    except NumberFormatError:
        return None
    # Any exponent but 0 is not a whole amount as written: decimals (20.5, 20000.00), 2E+4, NaN.
    return int(amount) if amount.as_tuple().exponent == 0 else None


def quote_problems(data: QuoteInput, today: date) -> dict[str, str]:
    """Each field's problem in words; empty when the quote may be sent. `today` is the Danish date
    (`workdays.danish_date`): the clinic's, and the one its validity counts from."""
    problems: dict[str, str] = {}
    for name in ("price_from", "price_to"):
        amount = getattr(data, name)
        if amount is None:
            problems[name] = _l("Enter the price as a whole number, for example 20000")
        elif amount < 0:
            problems[name] = _l("The price cannot be negative")
        elif amount == 0 or amount > MAX_AMOUNT:
            problems[name] = _l("Enter a price between 1 and %(most)s", most=format_decimal(MAX_AMOUNT))
    if "price_from" not in problems and "price_to" not in problems and data.price_to < data.price_from:
        problems["price_to"] = _l("The highest price cannot be below the lowest price")
    if data.currency not in CURRENCIES:
        problems["currency"] = _l("Choose EUR or DKK")
    unknown = [item for item in data.includes if item not in INCLUDES]
    if not data.includes:
        problems["includes"] = _l("Tick at least one thing the price includes")
    elif unknown:
        problems["includes"] = _l("Choose only from the listed items")
    if data.earliest_start is None:
        problems["earliest_start"] = _l("Enter the earliest start as a date, YYYY-MM-DD")
    elif data.earliest_start < today:
        problems["earliest_start"] = _l("The earliest start cannot be in the past")
    if data.valid_days is None:
        problems["valid_days"] = _l("Enter for how many days the quote is valid")
    elif data.valid_days < 1:
        problems["valid_days"] = _l(
            "The quote must be valid for at least 1 day from today: a validity in the past is not possible"
        )
    elif data.valid_days > MAX_VALID_DAYS:
        problems["valid_days"] = _l("A quote can be valid for at most %(days)d days", days=MAX_VALID_DAYS)
    if len(data.message) > MAX_MESSAGE:
        problems["message"] = _l(
            "Keep the message under %(count)s characters", count=format_decimal(MAX_MESSAGE)
        )
    elif has_control_characters(data.message, multiline=True):  # PostgreSQL refuses NUL in text
        problems["message"] = CONTROLS_MESSAGE
    return problems


# Statuses that follow the quotes themselves: the first quote makes a lead quoted, the patient's
# choice makes it chosen. A coordinator cannot set them by hand.
FOLLOW_THE_QUOTES = {
    "quoted": _l("A lead becomes quoted when a clinic sends its first quote; it cannot be set by hand."),
    "chosen": _l("Only the patient chooses a clinic, from their own page; the lead becomes chosen then."),
}


# Routed says clinics were asked: routing makes it so. Set by hand, a new lead's routing task would
# skip it, and a lead waiting for review would reach clinics without the approval.
FOLLOWS_ROUTING = {
    "routed": _l(
        "A lead becomes routed when clinics are asked; it cannot be set by hand. "
        "Use Approve routing or Re-route."
    ),
}


def hand_move_refusal(target: str) -> str | None:
    """Why a coordinator may not move a lead to `target` by hand; None when the workflow decides."""
    return FOLLOW_THE_QUOTES.get(target) or FOLLOWS_ROUTING.get(target)


def valid_until(sent_at: datetime, valid_days: int) -> datetime:
    """A quote is valid to the end of its last day in Denmark, where the clinic counts its days:
    `valid_days` after the Danish date it was sent, until 23:59 Danish time, in UTC. (Quotes sent
    before kept the end of the UTC day, 00:59 or 01:59 Danish time the day after, and keep it.)"""
    last_day = danish_date(sent_at) + timedelta(days=valid_days)
    return datetime.combine(last_day, time.max, tzinfo=DANISH_TIME).astimezone(UTC)


# A stored validity this early in a Danish day is the end of the UTC day before (00:59 CET, 01:59
# CEST); the Danish rule's always ends at 23:59.
_END_OF_UTC_DAY_BEFORE = time(3, 0)


def last_valid_day(valid_until: datetime) -> date:
    """The Danish calendar day a quote is valid through, the day the clinic counted to: what every
    reader is shown, as Denmark's day, never moved into the reader's zone (where 23:59 Danish time
    is already the next day further east). A quote stored before the Danish rule ends at 23:59 UTC,
    early the next Danish day: its day is the one before."""
    local = valid_until.astimezone(DANISH_TIME)
    if local.time() < _END_OF_UTC_DAY_BEFORE:
        return local.date() - timedelta(days=1)
    return local.date()


def evidence_statement(evidence_status: str | None) -> str | None:
    """The plain statement a quote carries for a treatment that is not approved; None if approved."""
    if evidence_status in (None, "approved"):
        return None
    return EVIDENCE_STATEMENTS.get(evidence_status, EVIDENCE_STATEMENTS["investigational"])


def parse_rates(text: str | None) -> dict[tuple[str, str], Decimal]:
    """Read `EUR:DKK=7.46` (several separated by `;`) into both directions; RatesError otherwise."""
    rates: dict[tuple[str, str], Decimal] = {}
    for part in (text or "").split(";"):
        part = part.strip()
        if not part:
            continue
        pair, equals, value = part.partition("=")
        source, colon, target = (code.strip().upper() for code in pair.partition(":"))
        if not equals or not colon:
            raise RatesError(f"CURRENCY_RATES: {part!r} is not written like EUR:DKK=7.46")
        for code in (source, target):
            if code not in CURRENCIES:
                raise RatesError(f"CURRENCY_RATES: unknown currency {code!r}; known: {', '.join(CURRENCIES)}")
        if source == target:
            raise RatesError(f"CURRENCY_RATES: {part!r} converts a currency to itself")
        try:
            rate = Decimal(value.strip())
        except InvalidOperation:
            raise RatesError(f"CURRENCY_RATES: {value.strip()!r} is not a number") from None
        if not rate.is_finite() or rate <= 0:
            raise RatesError(f"CURRENCY_RATES: the rate in {part!r} must be a positive number")
        rates[(source, target)] = rate
        rates.setdefault((target, source), 1 / rate)
    return rates


@dataclass(frozen=True)
class Conversion:
    currency: str
    low: int
    high: int
    rate: Decimal


def indicative_conversion(
    low: int, high: int, currency: str, rates: dict[tuple[str, str], Decimal]
) -> Conversion | None:
    """The range in the other currency at the operator's rate, rounded to hundreds; None without a rate."""
    other = next((c for c in CURRENCIES if c != currency), None)
    rate = rates.get((currency, other))
    if rate is None:
        return None

    def convert(amount: int) -> int:
        return int((Decimal(amount) * rate / 100).quantize(Decimal(1)) * 100)

    return Conversion(other, convert(low), convert(high), rate)
