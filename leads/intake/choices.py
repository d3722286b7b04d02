"""The fixed answer lists of the quote form, as (stored value, label people read) pairs."""

import unicodedata

import pycountry

TIMEFRAMES = (
    ("as-soon-as-possible", "As soon as possible"),
    ("1-3-months", "Within 1 to 3 months"),
    ("3-6-months", "In 3 to 6 months"),
    ("6-12-months", "In 6 to 12 months"),
    ("not-sure", "I am not sure yet"),
)

BUDGETS = (
    ("under-10000-eur", "Under €10,000"),
    ("10000-20000-eur", "€10,000 to €20,000"),
    ("20000-50000-eur", "€20,000 to €50,000"),
    ("over-50000-eur", "Over €50,000"),
    ("not-sure", "I am not sure yet"),
)

CONTACT_PREFERENCES = (
    ("email", "Email"),
    ("phone", "Phone call"),
    ("whatsapp", "WhatsApp message"),
)

# How established a treatment is, in words a patient can act on (Treatment.evidence_status).
EVIDENCE_LABELS = {
    "approved": "Approved treatment",
    "clinical_trial": "Offered within clinical trials",
    "investigational": "Investigational: not an approved treatment",
}
EVIDENCE_SHORT = {
    "approved": "approved",
    "clinical_trial": "clinical trials",
    "investigational": "investigational",
}


def _sort_key(label: str) -> str:
    """Alphabetical for people: Åland sorts with A, not after Z."""
    decomposed = unicodedata.normalize("NFKD", label)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _country_name(country) -> str:
    return getattr(country, "common_name", None) or country.name


COUNTRIES = tuple(
    sorted(((c.alpha_2, _country_name(c)) for c in pycountry.countries), key=lambda item: _sort_key(item[1]))
)
LANGUAGES = tuple(
    sorted(
        ((lang.alpha_2, lang.name) for lang in pycountry.languages if hasattr(lang, "alpha_2")),
        key=lambda item: _sort_key(item[1]),
    )
)

COUNTRY_NAMES = dict(COUNTRIES)
LANGUAGE_NAMES = dict(LANGUAGES)


def label_for(choices: tuple[tuple[str, str], ...], value: str | None) -> str:
    """The label of a stored value, or the value itself if the list no longer has it."""
    return dict(choices).get(value or "", value or "")
