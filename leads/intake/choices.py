"""The fixed answer lists of the quote form, as (stored value, label people read) pairs."""

import pycountry
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from leads.i18n import N_, Term, money

TIMEFRAMES = (
    ("as-soon-as-possible", _l("As soon as possible")),
    ("1-3-months", _l("Within 1 to 3 months")),
    ("3-6-months", _l("In 3 to 6 months")),
    ("6-12-months", _l("In 6 to 12 months")),
    ("not-sure", _l("I am not sure yet")),
)


def _in_euros(message: str, **amounts: int) -> LazyString:
    """A label whose euro amounts are written the reader's way (€10,000 or 10.000 €)."""
    return LazyString(lambda: gettext(message, **{name: money(v, "EUR") for name, v in amounts.items()}))


BUDGETS = (
    ("under-10000-eur", _in_euros(N_("Under %(amount)s"), amount=10_000)),
    ("10000-20000-eur", _in_euros(N_("%(low)s to %(high)s"), low=10_000, high=20_000)),
    ("20000-50000-eur", _in_euros(N_("%(low)s to %(high)s"), low=20_000, high=50_000)),
    ("over-50000-eur", _in_euros(N_("Over %(amount)s"), amount=50_000)),
    ("not-sure", _l("I am not sure yet")),
)

# Each also as a sentence names it: "(email preferred)", "(foretrækker e-mail)".
CONTACT_PREFERENCES = (
    ("email", Term(_l("Email"), _l("email"))),
    ("phone", Term(_l("Phone call"), _l("phone"))),
    ("whatsapp", Term(_l("WhatsApp message"), _l("WhatsApp"))),
)

# How established a treatment is, in words a patient can act on (Treatment.evidence_status).
EVIDENCE_LABELS = {
    "approved": _l("Approved treatment"),
    "clinical_trial": _l("Offered within clinical trials"),
    "investigational": _l("Investigational: not an approved treatment"),
}
EVIDENCE_SHORT = {
    "approved": _l("approved"),
    "clinical_trial": _l("clinical trials"),
    "investigational": _l("investigational"),
}


# Every code the form accepts; the names people read come from leads.i18n in the reader's language.
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries)
LANGUAGE_CODES = frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def label_for(choices: tuple[tuple[str, str], ...], value: str | None) -> str:
    """The label of a stored value, or the value itself if the list no longer has it."""
    return dict(choices).get(value or "", value or "")
