"""The quote form. Its field names are a public contract (DESIGN.md section 8); every value is
checked by the pure cleaners in leads.intake, whose messages are shown to the patient."""

from collections.abc import Callable, Mapping

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
        self.cleaned: dict[str, object] = {}

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

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        self.cleaned = {}
        self._clean("full_name", clean.clean_name)
        self._clean("email", clean.clean_email)
        country = self._clean("country", clean.clean_country)
        self._clean("phone", lambda raw: clean.clean_phone(raw, country))
        self._clean("preferred_language", clean.clean_language)
        treatment = self._clean("treatment", self._clean_treatment)
        self._clean("condition", lambda raw: self._clean_condition(raw, treatment))
        self._clean("details", clean.clean_details)
        self._clean(
            "timeframe",
            lambda raw: clean.clean_choice(raw, TIMEFRAMES, _l("Choose when you would like treatment")),
        )
        self._clean(
            "budget",
            lambda raw: clean.clean_choice(raw, BUDGETS, _l("Choose a budget, or “I am not sure yet”")),
        )
        self._clean(
            "contact_preference",
            lambda raw: clean.clean_choice(
                raw, CONTACT_PREFERENCES, _l("Choose how you would like to be contacted")
            ),
        )
        if not self.consent_share.data:
            self.consent_share.errors.append(CONSENT_SHARE_MISSING)
        if not self.consent_contact.data:
            self.consent_contact.errors.append(CONSENT_CONTACT_MISSING)
        return not self.errors

    def _clean(self, name: str, cleaner: Callable[[str], object]):
        field = self[name]
        try:
            value = cleaner(field.data or "")
        except clean.Invalid as problem:
            field.errors.append(str(problem))
            return None
        self.cleaned[name] = value
        return value

    def _clean_treatment(self, raw: str) -> str:
        treatment = self.taxonomy.treatment(clean.clean_slug(raw))
        if treatment is None:
            raise clean.Invalid(_l("Choose the treatment you would like a quote for from the list"))
        return treatment.slug

    def _clean_condition(self, raw: str, treatment: str | None) -> str:
        slug = clean.clean_slug(raw)
        problem = condition_problem(self.taxonomy, treatment, slug)
        if problem:
            raise clean.Invalid(problem)
        return slug

    def field_errors(self) -> list[tuple[str, str]]:
        """(anchor id, message) for the error summary, in the order the fields appear."""
        return [
            (f"{name}-0" if name in RADIO_GROUPS else name, message)
            for name in FIELD_ORDER
            for message in self[name].errors
        ]

    def to_request(self, token: FormToken) -> QuoteRequest:
        """The validated form as the intake service takes it."""
        c = self.cleaned
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
            honeypot=self.message_subject.data or "",
            utm={name: clean.clean_tracking(self[name].data) for name in UTM_FIELDS},
            referrer=clean.clean_referrer(self.referrer.data),
        )
