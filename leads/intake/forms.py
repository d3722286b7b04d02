"""The quote form. Its field names are a public contract (DESIGN.md section 8); every value is
checked by the pure cleaners in leads.intake, whose messages are shown to the patient.

A sent form is checked from its raw values (`check_answers`); the WTForms form is built only to
show a page: the empty form, or the answers again with their problems."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, TextAreaField

from leads.intake import QuoteRequest, Taxonomy, condition_problem
from leads.intake import cleaning as clean
from leads.intake.choices import BUDGETS, CONTACT_PREFERENCES, LANGUAGE_CODES, TIMEFRAMES
from leads.intake.form_token import FormToken
from leads.intake.service import UTM_FIELDS

# The order fields appear in, for the error summary.
FIELD_ORDER = (
    "full_name",
    "email",
    "phone",
    "country",
    "preferred_language",
    "treatment",
    "condition",
    "details",
    "timeframe",
    "budget",
    "contact_preference",
    "consent_share",
    "consent_contact",
)
RADIO_GROUPS = {"timeframe": TIMEFRAMES, "budget": BUDGETS, "contact_preference": CONTACT_PREFERENCES}

CONSENT_SHARE_MISSING = _l(
    "Tick this box to let us share your request with matching Danish clinics. Without it we "
    "cannot get you a quote"
)
CONSENT_CONTACT_MISSING = _l(
    "Tick this box to let us and the clinics contact you. Without it nobody can send you a quote"
)


class QuoteForm(FlaskForm):
    full_name = StringField(_l("Full name"))
    email = StringField(_l("Email address"))
    phone = StringField(_l("Phone number"))
    country = StringField(_l("Country you live in"))
    preferred_language = StringField(_l("Language you would like us to use"))
    treatment = StringField(_l("Treatment"))
    condition = StringField(_l("Condition"))
    details = TextAreaField(_l("Tell us more"))
    timeframe = StringField(_l("When would you like to have treatment?"))
    budget = StringField(_l("What budget do you have in mind?"))
    contact_preference = StringField(_l("How would you like to be contacted?"))
    consent_share = BooleanField(_l("Sharing your request"))
    consent_contact = BooleanField(_l("Being contacted"))
    form_token = HiddenField()
    utm_source = HiddenField()
    utm_medium = HiddenField()
    utm_campaign = HiddenField()
    utm_term = HiddenField()
    utm_content = HiddenField()
    referrer = HiddenField()
    # The honeypot: hidden from people and assistive technology, filled in by bots.
    message_subject = StringField(_l("Leave this field empty"))

    def __init__(self, *args, taxonomy: Taxonomy, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.taxonomy = taxonomy

    def prefill(self, args: Mapping[str, str], *, language: str | None, referrer: str | None) -> None:
        """Fill in what a link (a magazine's "free quote" link) and the browser tell us."""
        treatment = self.taxonomy.treatment(clean.clean_slug(args.get("treatment")))
        condition = self.taxonomy.condition(clean.clean_slug(args.get("condition")))
        if treatment is not None:
            self.treatment.data = treatment.slug
        if condition is not None and (treatment is None or condition.slug in treatment.condition_slugs):
            self.condition.data = condition.slug
        for name in UTM_FIELDS:
            self[name].data = clean.clean_tracking(args.get(name)) or ""
        self.referrer.data = clean.clean_referrer(referrer) or ""
        if language in LANGUAGE_CODES:
            self.preferred_language.data = language

    def show(self, answers: "Answers") -> None:
        """Put each problem of the sent answers beside its field."""
        for name, messages in answers.errors.items():
            self[name].errors = list(messages)

    def field_errors(self) -> list[tuple[str, str]]:
        """(anchor id, message) for the error summary, in the order the fields appear."""
        return [
            (f"{name}-0" if name in RADIO_GROUPS else name, message)
            for name in FIELD_ORDER
            for message in self[name].errors
        ]


@dataclass
class Answers:
    """A sent form, checked: the values the intake takes, and each field's problems."""

    raw: Mapping[str, str]
    cleaned: dict[str, object] = field(default_factory=dict)
    errors: dict[str, list] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors

    def refuse(self, name: str, message) -> None:
        self.errors.setdefault(name, []).append(message)

    def to_request(self, token: FormToken) -> QuoteRequest:
        """The valid answers as the intake service takes them."""
        c, raw = self.cleaned, self.raw
        return QuoteRequest(
            full_name=c["full_name"],
            email=c["email"],
            phone=c["phone"],
            country=c["country"],
            preferred_language=c["preferred_language"],
            treatment=c["treatment"],
            condition=c["condition"],
            details=c["details"],
            timeframe=c["timeframe"],
            budget=c["budget"],
            contact_preference=c["contact_preference"],
            consent_version=token.consent_version,
            consent_language=token.consent_language,
            submission_key=token.key,
            honeypot=raw.get("message_subject") or "",
            utm={name: clean.clean_tracking(raw.get(name)) for name in UTM_FIELDS},
            referrer=clean.clean_referrer(raw.get("referrer")),
        )


# A tick box is on unless absent or sent as one of these (as WTForms' BooleanField reads it).
_UNTICKED = ("", "false")


def check_answers(raw: Mapping[str, str], taxonomy: Taxonomy) -> Answers:
    """Check every answer of a sent form (`raw`: the posted values), in the order of the page."""
    answers = Answers(raw)

    def take(name: str, cleaner: Callable[[str], object]):
        try:
            value = cleaner(raw.get(name) or "")
        except clean.Invalid as problem:
            answers.refuse(name, str(problem))
            return None
        answers.cleaned[name] = value
        return value

    def treatment_offered(raw_slug: str) -> str:
        treatment = taxonomy.treatment(clean.clean_slug(raw_slug))
        if treatment is None:
            raise clean.Invalid(_l("Choose the treatment you would like a quote for from the list"))
        return treatment.slug

    def condition_fits(raw_slug: str, treatment: str | None) -> str:
        slug = clean.clean_slug(raw_slug)
        problem = condition_problem(taxonomy, treatment, slug)
        if problem:
            raise clean.Invalid(problem)
        return slug

    take("full_name", clean.clean_name)
    take("email", clean.clean_email)
    country = take("country", clean.clean_country)
    take("phone", lambda value: clean.clean_phone(value, country))
    take("preferred_language", clean.clean_language)
    treatment = take("treatment", treatment_offered)
    take("condition", lambda value: condition_fits(value, treatment))
    take("details", clean.clean_details)
    for name, choices, message in (
        ("timeframe", TIMEFRAMES, _l("Choose when you would like treatment")),
        ("budget", BUDGETS, _l("Choose a budget, or “I am not sure yet”")),
        ("contact_preference", CONTACT_PREFERENCES, _l("Choose how you would like to be contacted")),
    ):
        take(name, partial(clean.clean_choice, choices=choices, message=message))
    if raw.get("consent_share", "") in _UNTICKED:
        answers.refuse("consent_share", CONSENT_SHARE_MISSING)
    if raw.get("consent_contact", "") in _UNTICKED:
        answers.refuse("consent_contact", CONSENT_CONTACT_MISSING)
    return answers
