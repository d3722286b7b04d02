"""Languages: which one a page is read in, and the reader's own words for countries, languages,
money, dates and durations (and phone numbers, grouped for reading). Patient pages follow the
patient's choice, staff pages the staff member's setting, a clinic's pages its notification
language."""

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import phonenumbers
import pycountry
from babel import Locale, support
from babel.core import get_global
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.numbers import format_currency
from babel.units import format_unit
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import get_locale, gettext, refresh
from flask_login import current_user
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from wtforms.i18n import messages_path

from leads.extensions import babel as babel_extension

# The languages patients can read the site and their emails in, each named in itself for the menu.
LANGUAGES = {
    "en": "English",
    "da": "Dansk",
    "de": "Deutsch",
    "sv": "Svenska",
    "nb": "Norsk bokmål",
    "ar": "العربية",
}
DEFAULT_LANGUAGE = "en"
# The menu's query parameter, and where the choice is kept for the visit.
MENU_PARAM = "language"
SESSION_KEY = "language"
# A link's hint (`/quote?lang=de`), weaker than the patient's own choice; kept for the visit too,
# so that the form sent from a page reached by such a link answers in the same language.
LINK_PARAM = "lang"
LINK_SESSION_KEY = "link_language"
# Pages written for patients.
PATIENT_BLUEPRINTS = frozenset({"public", "self_service", None})
# The languages staff pages can be read in (each user's setting, `User.language`), named in themselves.
STAFF_LANGUAGES = {"en": "English", "da": "Dansk"}
# Staff pages, the sign-in pages among them.
STAFF_BLUEPRINTS = frozenset({"staff", "directory", "auth"})


def N_(message: str) -> str:
    """Mark a message for the catalogs where it is defined; it is translated where it is shown."""
    return message


def register_i18n(app: Flask, translations_dir: str) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", translations_dir)
    babel_extension.init_app(app, locale_selector=select_locale)
    app.before_request(remember_choice)
    app.before_request(_share_wtforms_catalogs)
    app.jinja_env.globals.update(
        page_language=page_language,
        patient_page=patient_page,
        text_direction=text_direction,
        language_menu=language_menu,
        option_tags=option_tags,
    )
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["item_list"] = item_list
    app.jinja_env.filters["in_sentence"] = in_sentence
    app.jinja_env.filters["moment"] = moment
    app.jinja_env.filters["danish_day"] = danish_day
    app.jinja_env.filters["bdi"] = bdi
    app.jinja_env.filters["isolate"] = isolate
    app.jinja_env.filters["phone"] = phone_for_reading
    app.jinja_env.filters["phone_link"] = phone_for_dialling


class _WTFormsCatalogs:
    """WTForms' own messages in the page's language, read at the first use in the process.

    Flask-WTF would load and parse WTForms' catalog file again in every request that builds a
    form; it takes a catalog already set on the request instead (`request.wtforms_translations`).
    """

    def ugettext(self, string: str) -> str:
        return _wtforms_catalog(str(get_locale())).ugettext(string)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        return _wtforms_catalog(str(get_locale())).ungettext(singular, plural, n)


@cache
def _wtforms_catalog(locale: str) -> support.NullTranslations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


_WTFORMS_CATALOGS = _WTFormsCatalogs()


def _share_wtforms_catalogs() -> None:
    request.wtforms_translations = _WTFORMS_CATALOGS


def remember_choice() -> None:
    """A language picked from the menu, or named by a link, holds for the rest of the visit."""
    if not patient_page():
        return
    for param, key in ((MENU_PARAM, SESSION_KEY), (LINK_PARAM, LINK_SESSION_KEY)):
        if request.args.get(param) in LANGUAGES:
            session[key] = request.args[param]


def select_locale() -> str:
    """The language of this page: a page that named its reader's (`read_page_in`), a staff page
    the staff member's setting, a patient page the patient's choice; else English."""
    if has_request_context() and g.get("page_language") in LANGUAGES:
        return g.page_language
    if staff_page():
        return staff_language()
    if not patient_page():
        return DEFAULT_LANGUAGE
    return patient_page_language()


def read_page_in(language: str | None) -> None:
    """This page is for a reader whose language we know (a clinic's, from its signed link)."""
    g.page_language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    refresh()  # a text translated earlier in the request must not fix the language


def staff_language() -> str:
    """The signed-in staff member's setting; before sign-in, the browser's English or Danish."""
    if current_user.is_authenticated and current_user.language in STAFF_LANGUAGES:
        return current_user.language
    return request.accept_languages.best_match(STAFF_LANGUAGES) or DEFAULT_LANGUAGE


def patient_page_language() -> str:
    """The patient's choice, then a link's `lang`, then the browser's languages; else English."""
    for candidate in (session.get(SESSION_KEY), request.args.get(LINK_PARAM), session.get(LINK_SESSION_KEY)):
        if candidate in LANGUAGES:
            return candidate
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


# Languages whose readers read one we write: Norwegian in general, and Nynorsk, read Bokmål.
READ_AS = {"no": "nb", "nn": "nb"}


def patient_language(code: str | None) -> str:
    """The language to write to a patient in: theirs when we have it, else English."""
    primary = (code or "").lower().replace("_", "-").split("-")[0]
    primary = READ_AS.get(primary, primary)
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE


def patient_page() -> bool:
    return has_request_context() and request.blueprint in PATIENT_BLUEPRINTS


def staff_page() -> bool:
    return has_request_context() and request.blueprint in STAFF_BLUEPRINTS


def page_language() -> str:
    return str(get_locale() or DEFAULT_LANGUAGE)


def text_direction(language: str | None = None) -> str:
    return "rtl" if _right_to_left(language or page_language()) else "ltr"


@cache
def _right_to_left(language: str) -> bool:
    return Locale.parse(language).character_order == "right-to-left"


def language_menu() -> list[dict]:
    """Links to this page in each language, keeping the page's other query parameters; on a page
    answering a sent form at an address no link can open, to the page that shows that form."""
    current = page_language()
    path = _openable_path()
    if path == request.path:
        args = [(key, value) for key, value in request.args.items(multi=True) if key != MENU_PARAM]
    else:
        args = []  # they were the sent form's, not the page's
    return [
        {
            "code": code,
            "name": name,
            "href": f"{path}?{urlencode([*args, (MENU_PARAM, code)])}",
            "current": code == current,
        }
        for code, name in LANGUAGES.items()
    ]


def _openable_path() -> str:
    """This page's path if a link (a GET) can open it, else the nearest one above it that can.

    A form's page and the address its form is sent to differ by a last step (`/my-request/<t>`
    shows the form sent to `/my-request/<t>/withdraw`), so on a page that answers a POST-only
    address, such as its 400 after a refused form, going up finds the form's page. An address
    nothing answers (a 404) keeps its path: the menu then shows the same message in another language.
    """
    path = request.path
    if request.url_rule is not None and "GET" in request.url_rule.methods:
        return path
    adapter = current_app.create_url_adapter(request)
    while path != "/":
        try:
            adapter.match(path, method="GET")
        except MethodNotAllowed:
            path = path.rstrip("/").rpartition("/")[0] or "/"
            continue
        except HTTPException:  # not found, or redirected to its canonical address
            pass
        return path
    return path


def collation_key(language: str):
    """A sort key that orders words as readers of `language` expect.

    Accents fold into their letter (Å with A in English and German, ü with u), but the letters a
    language keeps at the end of its alphabet stay there: æ ø å in Danish and Norwegian, å ä ö in
    Swedish. Arabic letters with hamza or madda sort with their bare letter. The six languages'
    rules are this small, so a few lines serve better than a full ICU binding to build and ship.
    """
    tail = _ALPHABET_TAILS.get(language, {})

    def key(text: str) -> str:
        folded = []
        for char in unicodedata.normalize("NFC", text.casefold()):
            if char in tail:
                folded.append(tail[char])
                continue
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            folded.append(base.replace("ß", "ss"))
        return "".join(folded)

    return key


# Letters sorted after z; U+FFF0.. sort above every letter in the key.
_NORDIC = {"æ": "\ufff0", "ä": "\ufff0", "ø": "\ufff1", "ö": "\ufff1", "å": "\ufff2"}
_ALPHABET_TAILS = {
    "da": _NORDIC,
    "nb": _NORDIC,
    "sv": {"å": "\ufff0", "ä": "\ufff1", "æ": "\ufff1", "ö": "\ufff2", "ø": "\ufff2"},
}


@cache
def countries(language: str) -> tuple[tuple[str, str], ...]:
    """(ISO 3166 alpha-2, name in `language`) for every country, in that language's order."""
    names = Locale.parse(language).territories
    pairs = [(c.alpha_2, names.get(c.alpha_2) or _english_country(c)) for c in pycountry.countries]
    key = collation_key(language)
    return tuple(sorted(pairs, key=lambda pair: key(pair[1])))


@cache
def languages(language: str) -> tuple[tuple[str, str], ...]:
    """(ISO 639-1, name in `language`) for every language with a two-letter code, sorted so; each
    name an item of its own (a menu's option), so starting with a capital."""
    pairs = [(code, _capitalised(name, language)) for code, name in _language_names(language).items()]
    key = collation_key(language)
    return tuple(sorted(pairs, key=lambda pair: key(pair[1])))


@cache
def _language_names(language: str) -> dict[str, str]:
    """ISO 639-1 to the name `language` gives it inside a sentence: its own casing (Danish,
    Norwegian and Swedish `engelsk`, German `Englisch`), English where CLDR has no name."""
    names = Locale.parse(language).languages
    return {
        lang.alpha_2: names.get(lang.alpha_2) or lang.name
        for lang in pycountry.languages
        if hasattr(lang, "alpha_2")
    }


def option_tags(options: tuple[tuple[str, str], ...], selected: str | None = None) -> Markup:
    """`<option>` tags for a long cached list (countries, languages), `selected` marked.

    Escaping a few hundred names on every page view is most of the form's rendering, so the tags
    of each list are built once; marking the selected one is a replacement in the cached text.
    """
    tags = _option_tags(options)
    if not selected:
        return tags
    plain = Markup('<option value="{}">').format(selected)
    return tags.replace(plain, Markup('<option value="{}" selected>').format(selected), 1)


@cache
def _option_tags(options: tuple[tuple[str, str], ...]) -> Markup:
    tag = Markup('<option value="{}">{}</option>')
    return Markup("\n").join(tag.format(value, label) for value, label in options)


def country_name(alpha_2: str | None, language: str | None = None) -> str:
    """A country's name in `language` (the page's by default); the code itself if unknown."""
    code = (alpha_2 or "").upper()
    return dict(countries(language or page_language())).get(code) or code


def language_name(code: str | None, language: str | None = None, *, in_sentence: bool = False) -> str:
    """A language's name in `language` (the page's by default); the code itself if unknown.

    As an item of its own (a form's answer, a table's value) it starts with a capital; `in_sentence`
    it is written as `language` writes it there: "taler patientens sprog (engelsk)", not "(Engelsk)".
    """
    primary = (code or "").lower().replace("_", "-").split("-")[0]
    language = language or page_language()
    names = _language_names(language) if in_sentence else dict(languages(language))
    return names.get(primary) or (code or "")


@cache
def country_zone(alpha_2: str | None) -> ZoneInfo:
    """The time zone of a country that keeps one clock (Denmark: Europe/Copenhagen; Germany:
    Europe/Berlin, whose Büsingen keeps the same time); else UTC."""
    zones = [ZoneInfo(name) for name in get_global("territory_zones").get((alpha_2 or "").upper(), [])]
    if zones and all(_same_clock(zones[0], other) for other in zones[1:]):
        return zones[0]
    return ZoneInfo("UTC")


# Each day at noon UTC over ten years: a country's zones that agree on all of them, summer time
# included, keep one clock.
_CLOCK_SAMPLES = [datetime(2025, 1, 1, 12, tzinfo=UTC) + timedelta(days=day) for day in range(0, 3653)]


def _same_clock(one: ZoneInfo, other: ZoneInfo) -> bool:
    return all(
        moment.astimezone(one).utcoffset() == moment.astimezone(other).utcoffset()
        for moment in _CLOCK_SAMPLES
    )


def moment(value: datetime | None, country: str | None = None, language: str | None = None) -> str:
    """A moment as `language` writes a date and time, in the zone of `country` when it keeps one
    clock, else in UTC, the zone always named: 28 November 2026, 14:05 UTC / 28. november 2026
    15.05 CET."""
    if value is None:
        return ""
    zone = country_zone(country)
    locale = Locale.parse(language or page_language())
    pattern = locale.datetime_formats["medium"].format(
        locale.time_formats["short"].pattern, locale.date_formats["long"].pattern
    )
    local = value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=UTC).astimezone(zone)
    text = format_datetime(local, pattern, tzinfo=zone, locale=locale)
    return f"{text} {local.strftime('%Z')}"


def danish_day(day: date | None) -> str:
    """A Danish calendar day (a quote's last valid day) as the page's language writes a date, said
    to be Denmark's: 12 December 2026 (Danish time). Never moved into the reader's zone, where the
    end of a Danish day is already the next day further east."""
    if day is None:
        return ""
    return gettext("%(date)s (Danish time)", date=format_date(day, "long", locale=page_language()))


class Term:
    """A word of one of our fixed lists (what a quote includes, a way to be contacted). As an item of
    its own (a form's option, a table's value) it starts with a capital: "E-mail"; inside a sentence
    it is written as the reader's language writes it there (`in_sentence`): "foretrækker e-mail",
    German "bevorzugt: E-Mail". The same distinction as `language_name`'s, worded by the catalogs:
    no rule can lower a first letter that a proper name keeps (WhatsApp) or German nouns keep."""

    __slots__ = ("alone", "in_sentence")

    def __init__(self, alone, in_sentence) -> None:
        self.alone, self.in_sentence = alone, in_sentence

    def __str__(self) -> str:
        return str(self.alone)

    def __html__(self) -> str:
        return escape(str(self.alone))


def in_sentence(word) -> str:
    """`word` as written inside a sentence: a `Term`'s sentence form, anything else as it is."""
    return str(word.in_sentence if isinstance(word, Term) else word)


def item_list(items, language: str | None = None) -> str:
    """Words listed as `language` writes a list: Treatment and rehabilitation / Behandling og
    genoptræning / Behandlung und Rehabilitation / العلاج وإعادة التأهيل (an English comma is not
    every language's). The list starts with a capital and goes on as a sentence would (`Term`)."""
    words = [str(item) if number == 0 else in_sentence(item) for number, item in enumerate(items)]
    return format_list(words, locale=language or page_language())


def duration(seconds: float, language: str | None = None) -> str:
    """A length of time in its two largest units that matter, abbreviated as `language` abbreviates
    them and paired as it pairs units: 3 days, 4 hr / 3 dage og 4 t. / 3 Tg., 4 Std.; 25 min.; 40 Sek.
    A reader of Danish does not read "d" and "h" as days and hours."""
    locale = Locale.parse(language or page_language())
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        counts = [(days, "day"), (hours, "hour")]
    elif hours:
        counts = [(hours, "hour"), (minutes, "minute")]
    else:
        counts = [(minutes, "minute")] if minutes else [(secs, "second")]
    words = [format_unit(count, f"duration-{unit}", length="short", locale=locale) for count, unit in counts]
    if len(words) == 1 or not counts[1][0]:
        return words[0]
    # The locale's pattern for two short units, else for two of anything (Danish has no unit list
    # of its own). Not format_list: it repeats the second item where the unit list has no pattern
    # for two (Arabic's).
    pair = locale.list_patterns.get("unit-short", {}).get("2") or locale.list_patterns["standard"]["2"]
    return pair.format(*words)


def bdi(text) -> Markup:
    """A name we did not write (a clinic's, a patient's) set inside a translated sentence as
    `<bdi>`, escaped: its own direction cannot reorder the sentence around it, nor the sentence
    it (a Latin name with brackets beside Arabic punctuation would otherwise show mirrored)."""
    return Markup("<bdi>{}</bdi>").format(text)


def isolate(text) -> str:
    """The same in plain text, where markup cannot go (a page's title, an email's text part, a
    message built in Python): the name between Unicode's FIRST STRONG ISOLATE and POP DIRECTIONAL
    ISOLATE, which do what `<bdi>` does, when it holds a letter written the other way than the
    page's language (a Latin name in Arabic, an Arabic one in German). Only then can it reorder
    the sentence, or turn a line it opens the other way (a plain-text line takes its direction from
    its first letter outside an isolate); elsewhere the marks guard nothing, and some mail clients
    show them as boxes."""
    text = str(text)
    others = _LEFT_TO_RIGHT if _right_to_left(page_language()) else _RIGHT_TO_LEFT
    if any(unicodedata.bidirectional(character) in others for character in text):
        return f"\u2068{text}\u2069"
    return text


# Unicode's bidirectional classes of letters written left to right, and right to left (Hebrew, Arabic).
_LEFT_TO_RIGHT = frozenset({"L"})
_RIGHT_TO_LEFT = frozenset({"R", "AL"})


def phone_for_reading(stored: str | None) -> str:
    """A stored phone number (E.164, +49301234567) grouped as the international format writes it
    (+49 30 1234567), the same in every language; a value that is no such number as stored."""
    number = _phone(stored)
    return (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if number
        else stored or ""
    )


def phone_for_dialling(stored: str | None) -> str:
    """A stored phone number for a `tel:` link: E.164, no spaces; a value that is no number as stored."""
    number = _phone(stored)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number else stored or ""


def _phone(stored: str | None) -> "phonenumbers.PhoneNumber | None":
    try:
        return phonenumbers.parse(stored or "", None)  # E.164 carries its country code
    except phonenumbers.NumberParseException:
        return None


def money(amount, currency: str, language: str | None = None, decimals: int = 0) -> str:
    """An amount with its currency as `language` writes it: € 20,000 / 20.000 € / 20 000 kr.; whole
    unless `decimals` allows up to that many (an exchange rate: 7,4603 kr.)."""
    return _money(amount, currency, language or page_language(), decimals)


# Babel parses the locale's pattern on every call; the same few amounts recur (the budget labels
# of every provider email, a clinic's prices on every page of its quotes).
@lru_cache(maxsize=4096)
def _money(amount, currency: str, language: str, decimals: int = 0) -> str:
    locale = Locale.parse(language)
    fraction = "." + "#" * decimals if decimals else ""
    pattern = locale.currency_formats["standard"].pattern.split(";")[0].replace(".00", fraction)
    text = format_currency(amount, currency, format=pattern, locale=locale, currency_digits=False)
    # CLDR's currency spacing, which Babel leaves out: a code such as DKK never touches a digit.
    return _LETTER_BY_DIGIT.sub("\xa0", text)


_LETTER_BY_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


def _english_country(country) -> str:
    return getattr(country, "common_name", None) or country.name


def _capitalised(name: str, language: str) -> str:
    # Danish, Swedish and Norwegian write language names in lower case; a list item starts upper.
    return name[:1].upper() + name[1:] if language != "ar" else name
