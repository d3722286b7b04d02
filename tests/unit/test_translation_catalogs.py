"""The shipped catalogs are complete: every message of translations/messages.pot is translated in
every patient language, none is fuzzy, and every placeholder survives translation."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from leads.i18n import LANGUAGES

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
# Plural forms may leave the number out ("ساعة واحدة", one hour), never add another placeholder.
PLURAL_COUNTS = {"%(num)d", "%(count)s"}


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as file:
        return read_po(file, locale=locale)


TEMPLATE = _catalog(TRANSLATIONS / "messages.pot")


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_message_is_translated_and_none_is_fuzzy(language):
    catalog = _catalog(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", language)
    problems = []
    for template_message in TEMPLATE:
        if not template_message.id:
            continue
        message = catalog.get(template_message.id)
        if message is None:
            problems.append(f"missing (run make messages): {template_message.id!r}")
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            problems.append(f"untranslated: {message.id!r}")
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = set(PLACEHOLDER.findall(" ".join(sources)))
        for string in strings:
            found = set(PLACEHOLDER.findall(string or ""))
            allowed = expected - PLURAL_COUNTS if isinstance(message.id, tuple) else expected
            if not allowed <= found <= expected:
                problems.append(f"placeholders {sorted(found)} instead of {sorted(expected)}: {message.id!r}")
    assert not catalog.fuzzy, f"{language}: the catalog's header is marked fuzzy"
    assert problems == []


def test_each_catalog_holds_only_what_the_template_has():
    """A catalog with entries the template lost is out of date: run `make messages`."""
    template_ids = {message.id for message in TEMPLATE}
    for language in LANGUAGES:
        catalog = _catalog(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", language)
        stale = [message.id for message in catalog if message.id and message.id not in template_ids]
        assert stale == [], f"{language} has entries no longer in messages.pot"


def test_every_patient_language_has_a_catalog_and_nothing_else_ships():
    shipped = {path.parent.parent.name for path in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")}
    assert shipped == set(LANGUAGES)


# Each language's own quotation marks (a button's name quoted in a sentence): Danish »…«, German
# „…“, Swedish ”…”, Norwegian and Arabic «…». Straight quotes stay allowed (a mail server's answer).
QUOTATION_MARKS = set("„“”«»‚‘’")
OWN_QUOTATION_MARKS = {"da": set("»«"), "de": set("„“"), "sv": set("”"), "nb": set("«»"), "ar": set("«»")}


@pytest.mark.parametrize("language", sorted(OWN_QUOTATION_MARKS))
def test_each_catalog_quotes_with_its_own_languages_quotation_marks(language):
    catalog = _catalog(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", language)
    foreign = []
    for message in catalog:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            if (set(string or "") & QUOTATION_MARKS) - OWN_QUOTATION_MARKS[language]:
                foreign.append(string)
    assert foreign == []
