"""Admin forms for the provider directory and the taxonomy. Provider rules live in the service
(shared with the CSV import); these forms carry CSRF and render the fields."""

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp

from leads.directory.taxonomy import SLUG_PATTERN, SLUG_RULE
from leads.directory.validation import NOTIFICATION_LANGUAGES, REGIONS, ProviderData
from leads.models import EvidenceStatus
from leads.validators import NoControlCharacters

OFFER_CHOICES = [
    SelectChoice("", _l("Not offered")),
    SelectChoice(EvidenceStatus.APPROVED.value, _l("Offered as an approved treatment")),
    SelectChoice(EvidenceStatus.CLINICAL_TRIAL.value, _l("Offered within a clinical trial")),
    SelectChoice(EvidenceStatus.INVESTIGATIONAL.value, _l("Offered as investigational")),
]
EVIDENCE_CHOICES = [
    SelectChoice(EvidenceStatus.APPROVED.value, _l("Approved")),
    SelectChoice(EvidenceStatus.CLINICAL_TRIAL.value, _l("Clinical trial")),
    SelectChoice(EvidenceStatus.INVESTIGATIONAL.value, _l("Investigational")),
]


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes, one per choice."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def split_list(text: str | None) -> list[str]:
    """Addresses or codes typed one per line, or separated by commas or semicolons."""
    return [part for part in re.split(r"[\s,;]+", text or "") if part]


class ProviderForm(FlaskForm):
    name = StringField(_l("Name"))
    city = StringField(_l("City"))
    region = SelectField(
        _l("Region"),
        choices=[SelectChoice("", _l("Choose a region"))] + [SelectChoice(r, r) for r in REGIONS],
        validate_choice=False,
    )
    notification_emails = TextAreaField(
        _l("Notification email addresses"),
        description=_l("One address per line. Each address gets its own email for every new lead."),
    )
    languages = StringField(
        _l("Languages the staff speak"),
        description=_l("Two-letter codes separated by commas, for example: da, en, de"),
    )
    notification_language = RadioField(
        _l("Language of the notification emails"),
        choices=[SelectChoice(code, name) for code, name in NOTIFICATION_LANGUAGES.items()],
        default="en",
        validate_choice=False,
    )
    weekly_capacity = StringField(
        _l("Leads per week"),
        description=_l("The most new leads the provider gets in one week (Monday to Sunday)."),
    )
    conditions = MultiCheckboxField(_l("Conditions accepted"), choices=[], validate_choice=False)

    # Set by provider_form(): [(treatment, field)] for the per-treatment evidence selects, and the
    # errors about the treatments as a group.
    treatment_fields: list
    treatments_errors: list

    def to_data(self) -> ProviderData:
        return ProviderData(
            name=self.name.data or "",
            city=self.city.data or "",
            region=self.region.data or "",
            notification_emails=split_list(self.notification_emails.data),
            languages=split_list(self.languages.data),
            notification_language=self.notification_language.data or "",
            weekly_capacity=self.weekly_capacity.data or "",
            treatments={t.slug: f.data for t, f in self.treatment_fields if f.data},
            conditions=list(self.conditions.data or []),
        )


def provider_form(treatments, conditions, provider=None) -> ProviderForm:
    """A ProviderForm with one evidence-status select per treatment, filled from `provider` on GET."""

    class _ProviderForm(ProviderForm):
        pass

    for treatment in treatments:
        setattr(
            _ProviderForm,
            f"treatment_{treatment.id}",
            SelectField(treatment.name, choices=OFFER_CHOICES, validate_choice=False),
        )
    data = None
    if provider is not None:
        data = {
            "name": provider.name,
            "city": provider.city,
            "region": provider.region,
            "notification_emails": "\n".join(provider.notification_emails or []),
            "languages": ", ".join(provider.languages or []),
            "notification_language": provider.notification_language,
            "weekly_capacity": str(provider.weekly_capacity),
            "conditions": [c.slug for c in provider.conditions],
        }
        data.update({f"treatment_{pt.treatment_id}": pt.evidence_status for pt in provider.treatments})
    form = _ProviderForm(data=data)
    form.conditions.choices = condition_choices(conditions)
    form.treatment_fields = [(t, form[f"treatment_{t.id}"]) for t in treatments]
    form.treatments_errors = []
    return form


class FriendlyDateField(DateField):
    """A date input whose parse error says what to type."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a date such as 2026-12-31")) from None


def condition_choices(conditions) -> list[SelectChoice]:
    return [SelectChoice(c.slug, f"{c.name} ({c.category})") for c in conditions]


class PauseForm(FlaskForm):
    until = FriendlyDateField(
        _l("Paused until (optional)"),
        validators=[Optional()],
        description=_l(
            "The provider gets leads again from this date. "
            "Leave it empty to pause until you reactivate the provider."
        ),
    )


class ActionForm(FlaskForm):
    """A button-only form (reactivate): CSRF and nothing else."""


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file to import"))])


def _slug_field() -> StringField:
    """A treatment's or condition's slug: set once, used in links and CSV files."""
    return StringField(
        _l("Slug"),
        validators=[
            DataRequired(_l("Enter a slug")),
            Length(max=80),
            Regexp(SLUG_PATTERN.pattern, message=SLUG_RULE),
        ],
        description=_l("Used in quote-form links and CSV files; it cannot be changed later."),
    )


class TreatmentForm(FlaskForm):
    slug = _slug_field()
    name = StringField(
        _l("Name"),
        validators=[DataRequired(_l("Enter the treatment's name")), Length(max=200), NoControlCharacters()],
    )
    description = TextAreaField(
        _l("Description shown to patients"),
        validators=[Length(max=2000), NoControlCharacters(multiline=True)],
        description=_l("Plain and honest."),
    )
    evidence_status = RadioField(
        _l("Evidence status"),
        choices=EVIDENCE_CHOICES,
        validate_choice=False,
        validators=[
            AnyOf([choice.value for choice in EVIDENCE_CHOICES], message=_l("Choose the evidence status"))
        ],
    )
    requires_review = BooleanField(
        _l("A coordinator approves routing first"),
        description=_l(
            "Leads for this treatment wait in the coordinator queue before any provider sees them."
        ),
    )
    active = BooleanField(_l("Shown on the quote form"), default=True)
    conditions = MultiCheckboxField(_l("Conditions it is for"), choices=[], validate_choice=False)


class ConditionForm(FlaskForm):
    slug = _slug_field()
    name = StringField(
        _l("Name"),
        validators=[DataRequired(_l("Enter the condition's name")), Length(max=200), NoControlCharacters()],
    )
    category = StringField(
        _l("Category"),
        validators=[
            DataRequired(_l("Enter the category, for example Spinal cord injury")),
            Length(max=80),
            NoControlCharacters(),
        ],
        description=_l("Providers see only the category in their notification email."),
    )
    active = BooleanField(_l("Shown on the quote form"), default=True)
