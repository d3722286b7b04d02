"""Forms of the staff dashboard. Queue filters and the stats period are GET forms (no CSRF:
they change nothing and must be bookmarkable); every other form posts with a CSRF token."""

import zoneinfo
from datetime import date

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields import Label
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional, ValidationError

from leads.auth.accounts import MIN_PASSWORD_LENGTH
from leads.i18n import STAFF_LANGUAGES, countries, page_language
from leads.ids import id_from
from leads.models import Role
from leads.patients.privacy import CLOSING_WARNING
from leads.staff.access_log import ACTION_LABELS
from leads.staff.labels import LEAD_STATUSES, ROLES
from leads.validators import CONTROLS_MESSAGE, NoControlCharacters
from leads.workflow import LeadStatus

DATE_MESSAGE = _l("Enter the date as YYYY-MM-DD, for example 2025-03-31")
# The dates a filter or period may name: the pages reach a month before and a day after, still a date.
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2999, 12, 31)
DATE_RANGE_MESSAGE = _l(
    "Enter a date from %(first)s to %(last)s", first=FIRST_DATE.isoformat(), last=LAST_DATE.isoformat()
)
# A text area: line breaks and tabs are fine, NUL and the other controls are not.
_no_controls_in_text = NoControlCharacters(CONTROLS_MESSAGE, multiline=True)
# Every lead status and its label, translated when shown.
STATUS_LABELS = {status.value: LEAD_STATUSES[status.value] for status in LeadStatus}


def country_choices() -> list[tuple[str, str]]:
    """Every country by its name in the page's language, in that language's order."""
    return [("", gettext("Any country"))] + [
        (code, f"{name} ({code})") for code, name in countries(page_language())
    ]


def _within_date_range(form, field) -> None:
    if field.data and not FIRST_DATE <= field.data <= LAST_DATE:
        raise ValidationError(DATE_RANGE_MESSAGE)


def _date_field(label) -> DateField:
    return DateField(label, validators=[Optional(), _within_date_range], invalid_value_message=DATE_MESSAGE)


class GetForm(FlaskForm):
    """Reads request.args, carries no CSRF token: a filter is a URL people share."""

    class Meta:
        csrf = False


class QueueFilterForm(GetForm):
    q = StringField(
        _l("Search"),
        validators=[
            Optional(),
            Length(max=200, message=_l("Search is at most 200 characters")),
            # A tab or line break pasted from a spreadsheet is whitespace to the search.
            NoControlCharacters(CONTROLS_MESSAGE, multiline=True),
        ],
    )
    status = SelectField(
        _l("Status"), choices=[], default="", invalid_choice_message=_l("Choose a status from the list")
    )
    treatment = SelectField(
        _l("Treatment"), choices=[], default="", invalid_choice_message=_l("Choose a treatment from the list")
    )
    condition = SelectField(
        _l("Condition"), choices=[], default="", invalid_choice_message=_l("Choose a condition from the list")
    )
    provider = SelectField(
        _l("Provider"), choices=[], default="", invalid_choice_message=_l("Choose a provider from the list")
    )
    country = SelectField(
        _l("Country"), choices=[], default="", invalid_choice_message=_l("Choose a country from the list")
    )
    source = StringField(
        _l("Source (utm_source)"),
        validators=[Optional(), Length(max=100), NoControlCharacters(CONTROLS_MESSAGE)],
    )
    assigned = SelectField(
        _l("Assigned to"),
        choices=[],
        default="",
        invalid_choice_message=_l("Choose a coordinator from the list"),
    )
    created_from = _date_field(_l("Received from"))
    created_to = _date_field(_l("Received to"))
    overdue = BooleanField(_l("Only SLA overdue"))
    erasure = BooleanField(_l("Only erasure requests to carry out"))
    closing = BooleanField(
        _l(
            "Only open requests retention closes for inactivity within %(days)s days",
            days=CLOSING_WARNING.days,
        )
    )
    left_by_erasure = BooleanField(_l("Only requests an erasure at its deadline left to check"))

    def validate_created_to(self, field):
        if field.data and self.created_from.data and field.data < self.created_from.data:
            raise ValidationError(_l("The end date must be on or after the start date"))


class StatsPeriodForm(GetForm):
    start = _date_field(_l("From"))
    end = _date_field(_l("To"))

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError(_l("The end date must be on or after the start date"))


class AccessLogFilterForm(GetForm):
    user = EmailField(
        _l("Staff email"), validators=[Optional(), Length(max=254), NoControlCharacters(CONTROLS_MESSAGE)]
    )
    # Any text: a reference no request has is named in the error (NUL included, never queried).
    lead = StringField(_l("Lead reference"), validators=[Optional(), Length(max=40)])
    action = SelectField(
        _l("What"),
        choices=[SelectChoice("", _l("Anything"))]
        + [SelectChoice(a, words) for a, words in ACTION_LABELS.items()],
        default="",
        invalid_choice_message=_l("Choose what to show from the list"),
    )


class StatusForm(FlaskForm):
    status = SelectField(_l("New status"), choices=[], default="", validate_choice=False)
    current_status = HiddenField()
    # Each text box on the lead page has a label of its own: a screen reader's list of fields, and
    # the error summary, tell them apart.
    note = TextAreaField(
        _l("Note on the status change (optional)"),
        validators=[Optional(), Length(max=2000), _no_controls_in_text],
    )

    def validate_status(self, field):
        if field.data not in STATUS_LABELS:
            raise ValidationError(_l("Choose a status from the list"))


class NoteForm(FlaskForm):
    note = TextAreaField(
        _l("Add a note"),
        validators=[
            DataRequired(_l("Write the note before saving it")),
            Length(max=5000),
            _no_controls_in_text,
        ],
    )


NOBODY = "nobody"


class AssignForm(FlaskForm):
    assignee = SelectField(
        _l("Coordinator"), choices=[], invalid_choice_message=_l("Choose a coordinator from the list")
    )
    # Who held the lead on the page the click came from (a user id or NOBODY): a click on a page
    # that showed someone else is refused. Required: an old page without it is stale too.
    shown_assignee = HiddenField(
        _l("Assigned to"), validators=[DataRequired(_l("The page is out of date; open the lead again"))]
    )

    def validate_shown_assignee(self, field):
        if field.data != NOBODY and id_from(field.data) is None:
            raise ValidationError(_l("The page is out of date; open the lead again"))

    @property
    def shown_assignee_id(self) -> int | None:
        return None if self.shown_assignee.data == NOBODY else int(self.shown_assignee.data)


class DuplicateForm(FlaskForm):
    original_reference = StringField(
        _l("Reference of the earlier request"),
        validators=[DataRequired(_l("Enter the reference of the earlier request, for example Q-7K3M9P"))],
    )
    note = TextAreaField(
        _l("Note on the duplicate (optional)"),
        validators=[Optional(), Length(max=2000), _no_controls_in_text],
    )


class PatientExportForm(FlaskForm):
    """The requests to export, ticked on the page that lists the patient's linked requests."""

    # The page draws a tick box for each listed request in its table row, named as this field.
    requests = SelectMultipleField(
        _l("Requests to export"),
        choices=[],
        validate_choice=False,  # the export refuses a reference that is not among the linked requests
        validators=[DataRequired(_l("Tick at least one request to export"))],
    )
    # The references the page listed: the export is refused if they changed since.
    shown = HiddenField(
        _l("Requests listed"),
        validators=[DataRequired(_l("Open the list of the patient's requests, then download there"))],
    )

    @property
    def shown_references(self) -> list[str]:
        return self.shown.data.split()


class ErasureForm(FlaskForm):
    confirm = BooleanField(
        _l("I have checked that this is the patient's own request, and understand it cannot be undone"),
        validators=[DataRequired(_l("Tick the box to confirm the erasure"))],
    )
    # The references the confirmation page listed: the erasure is refused if they changed since.
    shown = HiddenField(
        _l("Requests to erase"),
        validators=[DataRequired(_l("Open the list of the patient's requests, then confirm there"))],
    )

    @property
    def shown_references(self) -> list[str]:
        return self.shown.data.split()


class SpamForm(FlaskForm):
    note = TextAreaField(
        _l("Why is this spam? (optional)"), validators=[Optional(), Length(max=2000), _no_controls_in_text]
    )


class RerouteForm(FlaskForm):
    reason = TextAreaField(
        _l("Why re-route?"),
        validators=[
            DataRequired(_l("Say why the lead needs other providers")),
            Length(max=500),
            _no_controls_in_text,
        ],
    )
    # The offers on the page the click came from (lead_actions.offers_shown): a re-route from a
    # page that did not show the lead's latest offers is refused. Required: an old page is stale too.
    shown_offers = HiddenField(
        _l("Providers"),
        validators=[DataRequired(_l("The page is out of date; open the lead again")), Length(max=100)],
    )


class ApproveRoutingForm(FlaskForm):
    pass


class ResendForm(FlaskForm):
    pass


class LeftByErasureCheckForm(FlaskForm):
    pass


class ExportForm(FlaskForm):
    include_details = BooleanField(_l("Include free-text medical details"))


_password_length = Length(
    min=MIN_PASSWORD_LENGTH,
    max=200,
    message=_l("The password must have at least %(count)d characters", count=MIN_PASSWORD_LENGTH),
)


class NewUserForm(FlaskForm):
    email = EmailField(
        _l("Email address"), validators=[DataRequired(_l("Enter an email address")), Length(max=254)]
    )
    # Least privilege first: a new account is a coordinator unless an admin is chosen.
    role = SelectField(
        _l("Role"),
        choices=[
            SelectChoice(Role.COORDINATOR.value, ROLES["coordinator"]),
            SelectChoice(Role.ADMIN.value, ROLES["admin"]),
        ],
        default=Role.COORDINATOR.value,
        invalid_choice_message=_l("Choose admin or coordinator"),
    )
    password = PasswordField(
        _l("Temporary password"),
        validators=[InputRequired(_l("Enter a temporary password")), _password_length],
    )


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New temporary password"),
        validators=[InputRequired(_l("Enter the new password")), _password_length],
    )

    def for_user(self, user_id: int, email: str) -> "ResetPasswordForm":
        """Tie the field to its user's row: the page holds one reset form per user (and the new
        account's password field), so the error summary links this one and names whose it is."""
        self.password.id = f"password-{user_id}"
        self.password.label = Label(
            self.password.id, gettext("New temporary password for %(email)s", email=email)
        )
        return self


class UserActiveForm(FlaskForm):
    pass


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone by its name (Europe/Copenhagen), sorted; the old aliases left out."""
    zones = sorted(
        z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))
    )
    return [("UTC", "UTC"), *((zone, zone.replace("_", " ")) for zone in zones)]


class AccountSettingsForm(FlaskForm):
    time_zone = SelectField(
        _l("Time zone for dates and times"),
        choices=time_zone_choices,
        validate_choice=False,
        validators=[DataRequired(_l("Choose a time zone"))],
    )

    def validate_time_zone(self, field) -> None:
        if field.data not in dict(time_zone_choices()):
            raise ValidationError(_l("Choose a time zone from the list, such as Europe/Copenhagen"))

    language = SelectField(
        _l("Language of the staff pages"),
        choices=[SelectChoice(code, name) for code, name in STAFF_LANGUAGES.items()],
        validate_choice=False,
        validators=[DataRequired(_l("Choose a language"))],
    )

    def validate_language(self, field) -> None:
        if field.data not in STAFF_LANGUAGES:
            raise ValidationError(_l("Choose English or Dansk from the list"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[InputRequired(_l("Enter your current password")), Length(max=200)]
    )
    new_password = PasswordField(
        _l("New password"), validators=[InputRequired(_l("Enter a new password")), _password_length]
    )
    confirm_password = PasswordField(
        _l("New password again"),
        validators=[
            InputRequired(_l("Enter the new password again")),
            EqualTo("new_password", message=_l("The two new passwords are not the same")),
        ],
    )
